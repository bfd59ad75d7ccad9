/**
 * The jobs API (issue 5) as the views use it: friendly types and thin calls through the typed
 * client for jobs, the queue, templates, presets, the spec schema, the memory estimate and
 * notifications. The job page (api/jobDetail.ts) builds on the same types.
 */
import { api, unwrap } from './client'
import { toApiError } from './errors'
import { authFetch } from './http'
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
]
/** Statuses in which a job holds (or is about to hold) an engine process. */
export const ACTIVE_STATUSES: readonly JobStatus[] = ['starting', 'running', 'stopping']
/** Statuses that end a run. */
export const FINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled']

export const isActive = (status: JobStatus): boolean => ACTIVE_STATUSES.includes(status)
export const isFinal = (status: JobStatus): boolean => FINAL_STATUSES.includes(status)
/** What the server allows (services/job_states.py): stop/cancel while queued or active. */
export const canStop = (status: JobStatus): boolean => status === 'running' || status === 'starting'
export const canCancel = (status: JobStatus): boolean => status === 'queued' || isActive(status)
export const canDelete = (status: JobStatus): boolean => status === 'draft' || isFinal(status)

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
}

/** The job's `error` as the server fills it for failed/cancelled jobs. */
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

// ----- templates, presets, spec schema, estimate, notifications -----

export type Template = Schemas['TemplatePublic']
export type TemplatePage = Schemas['TemplatePage']
export type TemplateInput = Schemas['TemplateCreate']
export type TemplateScope = 'all' | 'mine' | 'shared'
export type Estimate = Schemas['EstimatePublic']
export type EstimateParts = Schemas['EstimateParts']
export type Preset = Schemas['PresetPublic']
export type PresetMethod = Preset['method']
export type ParsedSpec = Schemas['ParsedSpecPublic']
export type AppNotification = Schemas['NotificationPublic']
export type NotificationPage = Schemas['NotificationPage']
export type NotificationSettings = Schemas['NotificationSettings']
export type WebhookTestResult = Schemas['WebhookTestResult']

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

/** Hand the browser a text as a file download. */
export function saveText(text: string, filename: string, type = 'text/yaml'): void {
  const url = URL.createObjectURL(new Blob([text], { type }))
  const link = document.createElement('a')
  link.href = url
  link.download = filename
  document.body.appendChild(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

const byId = (job_id: number) => ({ params: { path: { job_id } } })

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
  /** Graceful: the engine checkpoints, then the job ends `cancelled`. */
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
    const response = await authFetch(new Request(`/api/jobs/${id}/spec.yaml`, { credentials: 'include' }))
    if (!response.ok) throw toApiError(response.status, await response.json().catch(() => null))
    return response.text()
  },
}

export const templatesApi = {
  async list(scope: TemplateScope = 'all', page = 1, pageSize = 100): Promise<TemplatePage> {
    return unwrap(await api.GET('/api/templates', { params: { query: { scope, page, page_size: pageSize } } }))
  },
  async get(id: number): Promise<Template> {
    return unwrap(await api.GET('/api/templates/{template_id}', { params: { path: { template_id: id } } }))
  },
  async create(body: TemplateInput): Promise<Template> {
    return unwrap(await api.POST('/api/templates', { body }))
  },
  async remove(id: number): Promise<void> {
    unwrap(await api.DELETE('/api/templates/{template_id}', { params: { path: { template_id: id } } }))
  },
  async presets(): Promise<Preset[]> {
    return unwrap(await api.GET('/api/templates/presets')).items
  },
  /** Parse a YAML spec (ours or a LLaMA-Factory training YAML) without saving anything. */
  async parseYaml(yaml: string): Promise<ParsedSpec> {
    return unwrap(await api.POST('/api/templates/parse', { body: { yaml } }))
  },
}

export const notificationsApi = {
  async list(q: { unread_only?: boolean; page?: number; page_size?: number } = {}): Promise<NotificationPage> {
    return unwrap(await api.GET('/api/notifications', { params: { query: q } }))
  },
  /** Returns how many are still unread. */
  async markRead(ids: number[]): Promise<number> {
    return unwrap(await api.POST('/api/notifications/read', { body: { ids, all: false } })).unread
  },
  async markAllRead(): Promise<number> {
    return unwrap(await api.POST('/api/notifications/read', { body: { all: true } })).unread
  },
  async settings(): Promise<NotificationSettings> {
    return unwrap(await api.GET('/api/notifications/settings'))
  },
  async saveSettings(body: { webhook_url: string | null }): Promise<NotificationSettings> {
    return unwrap(await api.PUT('/api/notifications/settings', { body }))
  },
  async testWebhook(): Promise<WebhookTestResult> {
    return unwrap(await api.POST('/api/notifications/test-webhook', { body: {} }))
  },
}
