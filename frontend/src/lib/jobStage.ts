/**
 * What kind of work a job does. Training jobs come from the job form; merge and export jobs from a model
 * version and evaluation jobs from an evaluation (one job per evaluated model): those cannot be cloned
 * into the form (the server refuses), and have no loss or learning-rate curve.
 */
export type JobStage = 'train' | 'merge' | 'export' | 'evaluation'

const OTHER_STAGES: readonly string[] = ['merge', 'export', 'evaluation']

interface HasSpec {
  spec?: Record<string, unknown> | null
}

export function jobStage(job: HasSpec): JobStage {
  const stage = job.spec?.stage
  return typeof stage === 'string' && OTHER_STAGES.includes(stage) ? (stage as JobStage) : 'train'
}

/** Only training jobs clone into the job form. */
export function isCloneable(job: HasSpec): boolean {
  return jobStage(job) === 'train'
}

/** The evaluation an evaluation job scores a model for; null for other jobs. */
export function evaluationOf(job: HasSpec): number | null {
  const id = job.spec?.evaluation_id
  return jobStage(job) === 'evaluation' && typeof id === 'number' ? id : null
}
