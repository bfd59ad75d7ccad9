/**
 * The deployments API: model versions served by an inference backend (the builtin
 * worker or vLLM). Shapes typed by hand after `api/schemas_deployments.py` (see api/models.ts).
 */
import { requestJson } from './http'

export type DeploymentStatus = 'starting' | 'ready' | 'failed' | 'stopped'
export type DeploymentBackend = 'builtin' | 'vllm'

/** `DeploymentPublic`. */
export interface Deployment {
  id: number
  /** The registered model's name (or demo-tiny). */
  model: string
  model_id?: number | null
  version_id?: number | null
  version_number?: number | null
  owner_id?: number | null
  backend: DeploymentBackend | string
  status: DeploymentStatus
  memory_bytes?: number | null
  requests_served: number
  last_used_at?: string | null
  error?: string | null
  created_at?: string | null
  stopped_at?: string | null
}

export interface DeploymentPage {
  items: Deployment[]
  total: number
  page: number
  page_size: number
}

/** What the table shows of a deployment: `model@vN` when it serves a numbered version. */
export function deploymentLabel(d: Pick<Deployment, 'model' | 'version_number'>): string {
  return d.version_number ? `${d.model}@v${d.version_number}` : d.model
}

export const DEPLOYMENT_STATUSES: readonly DeploymentStatus[] = ['starting', 'ready', 'failed', 'stopped']

/** Element Plus tag colour per status: ready green, starting blue, failed red, stopped grey. */
export const DEPLOYMENT_STATUS_TAG: Readonly<Record<DeploymentStatus, 'primary' | 'success' | 'info' | 'danger'>> = {
  starting: 'primary',
  ready: 'success',
  failed: 'danger',
  stopped: 'info',
}

/** Only these hold a worker's memory, so only these can be undeployed. */
export const isLive = (status: string): boolean => status === 'starting' || status === 'ready'

export const deploymentsApi = {
  /** Newest first; the page shows the latest 100 (researchers: theirs; staff: everyone's). */
  async list(page = 1, pageSize = 100): Promise<DeploymentPage> {
    return requestJson('GET', '/api/deployments', { query: { page, page_size: pageSize } })
  },
  async get(id: number): Promise<Deployment> {
    return requestJson('GET', `/api/deployments/${id}`)
  },
  /** Load a model now (otherwise it loads on its first request). */
  async deploy(model: string): Promise<Deployment> {
    return requestJson('POST', '/api/deployments', { body: { model } })
  },
  async stop(id: number): Promise<Deployment> {
    return requestJson('POST', `/api/deployments/${id}/stop`)
  },
}
