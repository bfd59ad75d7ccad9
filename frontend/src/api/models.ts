/**
 * The model registry API: registered models, their versions with lineage, downloads and
 * merges, plus `GET /v1/models` (what the gateway can serve).
 *
 * The backend for these routes was written in parallel with this module, so the shapes are typed
 * here by hand after `api/schemas_models.py` (switch to the generated `components['schemas']` once
 * schema.d.ts has them); calls go through `requestJson` (api/http.ts): the same authenticated fetch
 * as the generated client (one refresh-and-replay on 401), failing with the same ApiError.
 */
import { downloadFile, requestJson } from './http'

// ----- shapes -----

export type ModelKind = 'base' | 'finetuned'
/** hub | local | job (fine-tuned from a job's output). */
export type ModelSource = 'hub' | 'local' | 'job' | string
export type WeightsKind = 'full' | 'adapter'
export type VersionStatus = 'ready' | 'merging' | 'downloading' | 'exporting' | 'failed'

/** What the registry detects from a model folder. */
export interface ModelInfo {
  architecture?: string | null
  model_type?: string | null
  param_count?: number | null
  context_length?: number | null
  chat_template?: boolean | null
  [key: string]: unknown
}

/** What an adapter sits on (for merged versions: where it came from). */
export interface LineageBase {
  /** `<name>@v<n>` of a registered base, else the ref (demo-tiny, hub id). */
  name: string
  ref?: string | null
  /** Set when the base is a registered model. */
  model_id?: number | null
  version_id?: number | null
}
export interface LineageJob {
  id: number
  name: string
  status: string
}
export interface LineageDataset {
  id: number
  name: string
  version_id: number
  version_number: number
}
/** Training metrics of a fine-tuned version (what is known from the job's events). */
export interface VersionMetrics {
  final_train_loss?: number | null
  final_eval_loss?: number | null
  train_loss?: number | null
  eval_loss?: number | null
  steps?: number | null
  [key: string]: unknown
}

/** `ModelVersionPublic` (api/schemas_models.py). */
export interface ModelVersion {
  id: number
  model_id: number
  model_name?: string
  number: number
  /** `<model name>@v<number>`: this version's /v1 model id. */
  name?: string
  weights: WeightsKind
  status: VersionStatus
  is_current?: boolean
  size_bytes?: number | null
  tags: string[]
  notes: string
  /** Detected: architecture, param_count, context_length, chat_template…; failures: error. */
  info?: ModelInfo | null
  metrics?: VersionMetrics | null
  spec?: Record<string, unknown> | null
  base?: LineageBase | null
  source_job?: LineageJob | null
  dataset?: LineageDataset | null
  parent_version_id?: number | null
  /** safetensors for trained and merged versions; gguf, gguf_lora, ollama or onnx for exports. */
  format?: string | null
  quantization?: string | null
  created_by?: number | null
  created_at: string
}

/** `ModelPublic` (api/schemas_models.py). */
export interface RegisteredModel {
  id: number
  name: string
  kind: ModelKind
  description: string
  shared: boolean
  source: ModelSource
  source_ref?: string | null
  owner_id: number
  /** The owner's username. */
  owner: string
  /** Whether the caller may rename, share, delete, add versions, merge. */
  can_edit: boolean
  current_version_id?: number | null
  current_version?: ModelVersion | null
  version_count?: number
  created_at: string
  updated_at: string
}

export interface ModelPage {
  items: RegisteredModel[]
  total: number
  page?: number
  page_size?: number
}

export interface ModelListQuery {
  kind?: ModelKind
  q?: string
  job_id?: number
  dataset_version_id?: number
  page?: number
  /** At most 100. */
  page_size?: number
}

export interface RegisterModelInput {
  name: string
  source: 'hub' | 'local'
  ref: string
  description: string
  shared: boolean
  download: boolean
}

export interface ModelPatch {
  name?: string
  description?: string
  shared?: boolean
}

export interface VersionPatch {
  tags?: string[]
  notes?: string
}

/** One entry of `GET /v1/models` (OpenAI's shape). */
export interface OpenAIModel {
  id: string
  object: 'model'
  created: number
  owned_by: string
}

/** The merge route answers with the queued job (at least its id, name and status). */
export interface QueuedJob {
  id: number
  name?: string
  status?: string
}

/** `ModelMergeStarted`: the queued job and the new full version (`merging` until the job succeeds). */
export interface MergeStarted {
  job: QueuedJob
  version: ModelVersion
}

export const modelsApi = {
  async list(q: ModelListQuery = {}): Promise<ModelPage> {
    return requestJson('GET', '/api/models', { query: { ...q } })
  },
  async get(id: number): Promise<RegisteredModel> {
    return requestJson('GET', `/api/models/${id}`)
  },
  async register(body: RegisterModelInput): Promise<RegisteredModel> {
    return requestJson('POST', '/api/models', { body })
  },
  async update(id: number, body: ModelPatch): Promise<RegisteredModel> {
    return requestJson('PATCH', `/api/models/${id}`, { body })
  },
  /** `files`: also remove the files the registry owns (not only the record). */
  async remove(id: number, files: boolean): Promise<void> {
    await requestJson('DELETE', `/api/models/${id}`, { query: { files: files ? 'true' : undefined } })
  },
  async versions(id: number): Promise<ModelVersion[]> {
    return (await requestJson<{ items: ModelVersion[] }>('GET', `/api/models/${id}/versions`)).items
  },
  async version(versionId: number): Promise<ModelVersion> {
    return requestJson('GET', `/api/models/versions/${versionId}`)
  },
  async updateVersion(versionId: number, body: VersionPatch): Promise<ModelVersion> {
    return requestJson('PATCH', `/api/models/versions/${versionId}`, { body })
  },
  /** Adapter → full weights, as a job in the queue; a new version appears when it succeeds. */
  async merge(versionId: number): Promise<MergeStarted> {
    return requestJson('POST', `/api/models/versions/${versionId}/merge`)
  },
  downloadUrl(versionId: number): string {
    return `/api/models/versions/${versionId}/download`
  },
  download(model: Pick<RegisteredModel, 'name'>, version: Pick<ModelVersion, 'id' | 'number'>): Promise<void> {
    const safe = model.name.replace(/[^A-Za-z0-9._-]+/g, '_')
    return downloadFile(modelsApi.downloadUrl(version.id), `${safe}-v${version.number}.tar.gz`)
  },
  /** Every model id the caller may use through the gateway (registry, demo-tiny, providers). */
  async servable(): Promise<OpenAIModel[]> {
    return (await requestJson<{ object: 'list'; data: OpenAIModel[] }>('GET', '/v1/models')).data
  },
}
