/**
 * The jobs API as the views use it: friendly types and thin calls through the typed
 * client for jobs, the queue, the spec schema and the memory estimate, and what the job page reads
 * of a run: metrics, events, logs (tail and pages), checkpoints, artifacts, pinning and downloads.
 * The live stream's frames are typed here too: the WebSocket protocol is not in the OpenAPI document.
 * Templates and presets are in api/templates.ts, notifications in api/notifications.ts.
 */
import { api, unwrap } from './client'
import { downloadFile, fetchText } from './http'
import type { components } from './schema'

type Schemas = components['schemas']
export type Job = Schemas['JobPublic']
export type JobStatus = Job['status']
export type JobPage = Schemas['JobPage']
export type QueueView = Schemas['QueueView']
export type QueueItem = Schemas['QueueItem']
export type JobEvents = Schemas['JobEvents']
export type JobEvent = Schemas['JobEventPublic']
export type JobMetrics = Schemas['JobMetrics']
/** A job spec in the engine's vocabulary (LLaMA-Factory keys); `dataset` is a dataset id. */
export type JobSpec = Record<string, unknown>

export const JOB_STATUSES: readonly JobStatus[] = [
  'draft',
  'queued',
  'starting',
  'running',
  'stopping',
  'succeeded',
  'failed',
  'cancelled',
  'stopped',
]
/** Statuses in which a job holds (or is about to hold) an engine process. */
export const ACTIVE_STATUSES: readonly JobStatus[] = ['starting', 'running', 'stopping']
/** Statuses that end a run. */
export const FINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled', 'stopped']
/** Final statuses that resume can leave (from a checkpoint): `stopped` is a graceful stop's end. */
export const RESUMABLE_STATUSES: readonly JobStatus[] = ['failed', 'cancelled', 'stopped']

export const isActive = (status: JobStatus): boolean => ACTIVE_STATUSES.includes(status)
export const isFinal = (status: JobStatus): boolean => FINAL_STATUSES.includes(status)
/** What the server allows (services/jobs/states.py): stop/cancel while queued or active. */
export const canStop = (status: JobStatus): boolean => status === 'running' || status === 'starting'
export const canCancel = (status: JobStatus): boolean => status === 'queued' || isActive(status)
export const canDelete = (status: JobStatus): boolean => status === 'draft' || isFinal(status)
export const canResume = (status: JobStatus): boolean => RESUMABLE_STATUSES.includes(status)

/** Element Plus tag type per status: the one colour scheme of the jobs UI. */
export type TagType = 'primary' | 'success' | 'info' | 'warning' | 'danger'
export const STATUS_TAG: Readonly<Record<JobStatus, TagType>> = {
  draft: 'info',
  queued: 'warning',
  starting: 'primary',
  running: 'primary',
  stopping: 'warning',
  succeeded: 'success',
  failed: 'danger',
  cancelled: 'info',
  stopped: 'warning',
}

/** The job's `error` as the server fills it for failed/cancelled/stopped jobs (a stopped job's
 * `details` has `step` and `checkpoint`, the one that resumes it). */
export interface JobError {
  code?: string
  message?: string
  suggestion?: string | null
  details?: { spec_patch?: JobSpec | null; [key: string]: unknown } | null
  last_log_lines?: string[] | null
}

/** The suggested spec fix of a failed job, when the engine's diagnosis has one. */
export function suggestedPatch(job: Pick<Job, 'error'>): JobSpec | null {
  const error = job.error as JobError | null | undefined
  const patch = error?.details?.spec_patch
  return patch && typeof patch === 'object' && Object.keys(patch).length > 0 ? patch : null
}

export interface JobListQuery {
  status?: JobStatus[]
  owner_id?: number
  page?: number
  page_size?: number
}

export type Estimate = Schemas['EstimatePublic']
export type EstimateParts = Schemas['EstimateParts']

/** One property of the spec's JSON schema (what the form reads of it). */
export interface SchemaProperty {
  type?: string | string[]
  description?: string
  default?: unknown
  enum?: unknown[]
  anyOf?: SchemaProperty[]
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  title?: string
  items?: SchemaProperty
  $ref?: string
}
/** GET /api/jobs/spec-schema with the schema typed as far as the form needs. */
export interface SpecSchema {
  schema: { properties?: Record<string, SchemaProperty>; [k: string]: unknown }
  groups: { common: string[]; advanced: string[]; hidden?: string[] }
}

// ----- engine events as the server stores and streams them (flat, `seq` unique per job) -----

export interface BaseEvent {
  seq: number
  type: string
  /** When the engine produced it (ISO 8601, like every time the API sends). */
  ts: string
  [key: string]: unknown
}
export interface MetricEvent extends BaseEvent {
  type: 'metric'
  step: number
  total_steps?: number | null
  epoch?: number | null
  loss?: number | null
  lr?: number | null
  grad_norm?: number | null
  tokens_per_s?: number | null
  progress?: number | null
  eta_s?: number | null
  elapsed_s?: number | null
  peak_rss_mb?: number | null
}
/** Where training stands after a step (at most about once a second, whatever logging_steps is). */
export interface ProgressEvent extends BaseEvent {
  type: 'progress'
  step: number
  total_steps?: number | null
  epoch?: number | null
  progress?: number | null
  /** Of the current attempt (a resumed run's clock starts again). */
  elapsed_s?: number | null
  eta_s?: number | null
  tokens_per_s?: number | null
  tokens_total?: number | null
}
export interface EvalEvent extends BaseEvent {
  type: 'eval'
  step: number
  eval_loss?: number | null
}
export interface GpuSample {
  index: number
  util_pct?: number | null
  mem_used_mb?: number | null
  mem_total_mb?: number | null
  temp_c?: number | null
  /** Over this attempt's samples so far. */
  mem_peak_mb?: number | null
  util_avg_pct?: number | null
}
export interface ResourceSample {
  cpu_pct?: number | null
  rss_mb?: number | null
  /** Over this attempt's samples so far, the current one included. */
  peak_rss_mb?: number | null
  cpu_avg_pct?: number | null
  gpus?: GpuSample[]
  ts?: string
}
export type JobEventAny = BaseEvent

/** Server → client frames of `WS /ws/jobs/{id}`. */
export type StreamMessage =
  | { type: 'snapshot'; job: Job; last_seq: number; resources: ResourceSample | null }
  | { type: 'job'; job: Job }
  | { type: 'heartbeat'; ts: string }
  | BaseEvent

/** One training point of the loss / learning-rate charts. */
export type MetricPoint = JobMetrics['points'][number]
export interface EvalPoint {
  step: number
  eval_loss?: number | null
}

export type LogPage = Schemas['JobLogPage']
export type Checkpoint = Schemas['CheckpointPublic']
export type Artifact = Schemas['ArtifactPublic']
/** The job row as the page shows it (attempt, pinned, resume_from… included). */
export type JobView = Job

const byId = (job_id: number) => ({ params: { path: { job_id } } })
const enc = encodeURIComponent

export const jobsApi = {
  async list(q: JobListQuery = {}): Promise<JobPage> {
    return unwrap(await api.GET('/api/jobs', { params: { query: q } }))
  },
  async get(id: number): Promise<Job> {
    return unwrap(await api.GET('/api/jobs/{job_id}', byId(id)))
  },
  async create(body: { name: string; spec: JobSpec; start: boolean }): Promise<Job> {
    return unwrap(await api.POST('/api/jobs', { body }))
  },
  async start(id: number): Promise<Job> {
    return unwrap(await api.POST('/api/jobs/{job_id}/start', byId(id)))
  },
  /** One click: imports the identity sample for this user if needed and queues the demo recipe on demo-tiny. */
  async trainDemo(): Promise<Job> {
    return unwrap(await api.POST('/api/jobs/demo'))
  },
  /** Graceful: the engine checkpoints, then the job ends `stopped` (resumable). */
  async stop(id: number): Promise<Job> {
    return unwrap(await api.POST('/api/jobs/{job_id}/stop', byId(id)))
  },
  /** Immediate. */
  async cancel(id: number): Promise<Job> {
    return unwrap(await api.POST('/api/jobs/{job_id}/cancel', byId(id)))
  },
  /**
   * A new draft from this job's spec. `spec_patch` is a JSON merge patch (keys replace, null
   * removes): a failed job's `error.details.spec_patch` is the engine's suggested fix in this form.
   */
  async clone(id: number, opts: { spec_patch?: JobSpec; name?: string } = {}): Promise<Job> {
    return unwrap(await api.POST('/api/jobs/{job_id}/clone', { ...byId(id), body: opts }))
  },
  async remove(id: number): Promise<void> {
    unwrap(await api.DELETE('/api/jobs/{job_id}', byId(id)))
  },
  /** From a checkpoint name (`checkpoint-40`) or, with null, the latest. */
  async resume(id: number, checkpoint: string | null = null): Promise<Job> {
    return unwrap(await api.POST('/api/jobs/{job_id}/resume', { ...byId(id), body: { checkpoint } }))
  },
  async queue(): Promise<QueueView> {
    return unwrap(await api.GET('/api/queue'))
  },
  /** Operators/admins: -1000..1000, higher runs first. */
  async setPriority(id: number, priority: number): Promise<Job> {
    return unwrap(await api.POST('/api/jobs/{job_id}/priority', { ...byId(id), body: { priority } }))
  },
  /** Operators/admins: the given queued jobs take this order. */
  async reorder(jobIds: number[]): Promise<QueueView> {
    return unwrap(await api.POST('/api/queue/reorder', { body: { job_ids: jobIds } }))
  },
  async specSchema(): Promise<SpecSchema> {
    return unwrap(await api.GET('/api/jobs/spec-schema')) as SpecSchema
  },
  /** A rough memory estimate; the spec may be incomplete (nothing is validated). */
  async estimate(spec: JobSpec): Promise<Estimate> {
    return unwrap(await api.POST('/api/jobs/estimate', { body: { spec } }))
  },
  /** The job's spec as YAML text. */
  async specYaml(id: number): Promise<string> {
    return fetchText(`/api/jobs/${id}/spec.yaml`)
  },

  // ----- what the job page reads of a run -----
  async metrics(id: number, downsample = 2000): Promise<JobMetrics> {
    return unwrap(
      await api.GET('/api/jobs/{job_id}/metrics', { params: { path: { job_id: id }, query: { downsample } } }),
    )
  },
  async events(id: number, after = 0, limit = 1000): Promise<{ items: JobEventAny[]; last_seq: number }> {
    const page = unwrap(
      await api.GET('/api/jobs/{job_id}/events', { params: { path: { job_id: id }, query: { after, limit } } }),
    )
    return { items: page.items as JobEventAny[], last_seq: page.last_seq }
  },
  /** The last `tail` readable lines and where to follow from (`next_offset`). */
  async logTail(id: number, tail = 500): Promise<LogPage> {
    return unwrap(await api.GET('/api/jobs/{job_id}/logs', { params: { path: { job_id: id }, query: { tail } } }))
  },
  async logPage(id: number, offset: number, limit = 256 * 1024): Promise<LogPage> {
    return unwrap(
      await api.GET('/api/jobs/{job_id}/logs', { params: { path: { job_id: id }, query: { offset, limit } } }),
    )
  },
  async checkpoints(id: number): Promise<Checkpoint[]> {
    return unwrap(await api.GET('/api/jobs/{job_id}/checkpoints', byId(id))).items
  },
  async artifacts(id: number): Promise<Artifact[]> {
    return unwrap(await api.GET('/api/jobs/{job_id}/artifacts', byId(id))).items
  },
  async pin(id: number, pinned: boolean): Promise<JobView> {
    return pinned
      ? unwrap(await api.POST('/api/jobs/{job_id}/pin', byId(id)))
      : unwrap(await api.POST('/api/jobs/{job_id}/unpin', byId(id)))
  },
  downloadLog(id: number): Promise<void> {
    return downloadFile(`/api/jobs/${id}/logs/download`, `job-${id}-engine.log`)
  },
  downloadCheckpoint(id: number, name: string): Promise<void> {
    return downloadFile(`/api/jobs/${id}/checkpoints/${enc(name)}/archive`, `job-${id}-${name}.tar.gz`)
  },
  downloadArtifact(id: number, name: string): Promise<void> {
    return downloadFile(`/api/jobs/${id}/artifacts/${enc(name)}/archive`, `job-${id}-${name}.tar.gz`)
  },
}
