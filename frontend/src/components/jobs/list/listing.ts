/**
 * Pure helpers of the jobs list and the queue board (tested without a DOM).
 */
import { ACTIVE_STATUSES, STATUS_TAG, type Job, type JobStatus, type TagType } from '@/api/jobs'
import type { Preset } from '@/api/templates'

export function statusTag(status: JobStatus): TagType {
  return STATUS_TAG[status] ?? 'info'
}

/** The progress bar's colour state for a status. */
export function progressStatus(status: JobStatus): '' | 'success' | 'exception' | 'warning' {
  if (status === 'succeeded') return 'success'
  if (status === 'failed') return 'exception'
  if (status === 'cancelled' || status === 'stopping' || status === 'stopped') return 'warning'
  return ''
}

/** Progress in percent (0..100, one decimal), succeeded counting as 100. */
export function progressPercent(job: Pick<Job, 'progress' | 'status'>): number {
  if (job.status === 'succeeded') return 100
  const p = job.progress ?? 0
  return Math.round(Math.min(1, Math.max(0, p)) * 1000) / 10
}

/** Whether a page holds something that changes by itself (worth polling). */
export function needsRefresh(jobs: readonly Pick<Job, 'status'>[]): boolean {
  return jobs.some((j) => j.status === 'queued' || ACTIVE_STATUSES.includes(j.status))
}

/** The model and dataset a job names, for the table. */
export function jobModel(job: Pick<Job, 'spec'>): string {
  const model = job.spec.model_name_or_path
  return typeof model === 'string' ? model : '—'
}

/**
 * The queue order after dragging `dragged` onto `target` (dropped before or after it).
 * Unknown ids or a drop onto itself leave the order as it was (a new array either way).
 */
export function moveInOrder(
  ids: readonly number[],
  dragged: number,
  target: number,
  where: 'before' | 'after',
): number[] {
  const from = ids.indexOf(dragged)
  if (from < 0 || !ids.includes(target) || dragged === target) return [...ids]
  const rest = ids.filter((id) => id !== dragged)
  const at = rest.indexOf(target) + (where === 'after' ? 1 : 0)
  rest.splice(at, 0, dragged)
  return rest
}

/** Whether two orders differ (a drop that changes nothing makes no request). */
export function sameOrder(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i])
}

/** The compare page's query for a selection (at least two jobs). */
export function compareQuery(ids: readonly number[]): { ids: string } | null {
  return ids.length >= 2 ? { ids: [...ids].sort((a, b) => a - b).join(',') } : null
}

type Translate = (key: string, params?: Record<string, unknown>) => string

/**
 * A shipped preset's description in the UI's language, written from its method and spec (the
 * preset file's own English sentence is what other clients of the API read).
 */
export function presetDescription(preset: Pick<Preset, 'method' | 'spec'>, t: Translate): string {
  const spec = preset.spec
  const target =
    spec.lora_target === 'all' || spec.lora_target === undefined
      ? t('jobsModels.preset.allLinear')
      : String(spec.lora_target)
  return t(`jobsModels.preset.${preset.method}`, {
    rank: typeof spec.lora_rank === 'number' ? spec.lora_rank : 8,
    target,
    precision: typeof spec.precision === 'string' ? spec.precision : 'auto',
    type: typeof spec.quantization_type === 'string' ? spec.quantization_type.toUpperCase() : 'NF4',
  })
}
