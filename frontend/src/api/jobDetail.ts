/**
 * What the job page reads beyond `api/jobs.ts`: metrics, events, logs (tail and pages),
 * checkpoints, artifacts, pinning, downloads, and the shapes of the live stream's messages.
 *
 * JSON endpoints go through the typed client; downloads go through the same authenticated fetch
 * (one refresh-and-replay on 401) and are handed to the browser as files. The stream's frames are
 * typed here: the WebSocket protocol is not part of the OpenAPI document.
 */
import { api, unwrap } from './client'
import { toApiError } from './errors'
import { filenameOf } from './datasets'
import { authFetch } from './http'
import type { Job, JobMetrics } from './jobs'
import type { components } from './schema'

// ----- engine events as the server stores and streams them (flat, `seq` unique per job) -----

export interface BaseEvent {
  seq: number
  type: string
  ts: number
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
}
export interface ResourceSample {
  cpu_pct?: number | null
  rss_mb?: number | null
  gpus?: GpuSample[]
  ts?: number
}
export type JobEventAny = BaseEvent

/** Server → client frames of `WS /ws/jobs/{id}`. */
export type StreamMessage =
  | { type: 'snapshot'; job: Job; last_seq: number; resources: ResourceSample | null }
  | { type: 'job'; job: Job }
  | { type: 'heartbeat'; ts: number }
  | BaseEvent

/** One training point of the loss / learning-rate charts. */
export type MetricPoint = JobMetrics['points'][number]
export interface EvalPoint {
  step: number
  eval_loss?: number | null
}

type Schemas = components['schemas']
export type LogPage = Schemas['JobLogPage']
export type Checkpoint = Schemas['CheckpointPublic']
export type Artifact = Schemas['ArtifactPublic']
/** The job row as the page shows it (attempt, pinned, resume_from… included). */
export type JobView = Job

/** Fetch a file through the authenticated fetch and hand it to the browser as a download. */
async function download(url: string, fallbackName: string): Promise<void> {
  const response = await authFetch(new Request(url, { credentials: 'include' }))
  if (!response.ok) throw toApiError(response.status, await response.json().catch(() => null))
  const blobUrl = URL.createObjectURL(await response.blob())
  const link = document.createElement('a')
  link.href = blobUrl
  link.download = filenameOf(response.headers.get('Content-Disposition')) ?? fallbackName
  document.body.appendChild(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(blobUrl), 10_000)
}

const byId = (job_id: number) => ({ params: { path: { job_id } } })
const enc = encodeURIComponent

export const jobDetailApi = {
  async metrics(id: number, downsample = 2000): Promise<JobMetrics> {
    return unwrap(await api.GET('/api/jobs/{job_id}/metrics', { params: { path: { job_id: id }, query: { downsample } } }))
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
    return unwrap(await api.GET('/api/jobs/{job_id}/logs', { params: { path: { job_id: id }, query: { offset, limit } } }))
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
  async get(id: number): Promise<JobView> {
    return unwrap(await api.GET('/api/jobs/{job_id}', byId(id)))
  },
  downloadLog(id: number): Promise<void> {
    return download(`/api/jobs/${id}/logs/download`, `job-${id}-engine.log`)
  },
  downloadCheckpoint(id: number, name: string): Promise<void> {
    return download(`/api/jobs/${id}/checkpoints/${enc(name)}/archive`, `job-${id}-${name}.tar.gz`)
  },
  downloadArtifact(id: number, name: string): Promise<void> {
    return download(`/api/jobs/${id}/artifacts/${enc(name)}/archive`, `job-${id}-${name}.tar.gz`)
  },
}
