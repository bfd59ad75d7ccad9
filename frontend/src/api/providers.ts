/**
 * The providers API: external OpenAI-compatible endpoints whose models the gateway serves
 * as `<provider>/<model>`. The API key is write-only: the server answers `has_api_key` and its last
 * four characters. Shapes typed by hand after `api/schemas_providers.py` (see api/models.ts).
 */
import { requestJson } from './http'

export interface Provider {
  id: number
  name: string
  base_url: string
  enabled: boolean
  /** Shared by an admin with everyone (owner_id null on the server). */
  shared: boolean
  owner_id?: number | null
  has_api_key: boolean
  api_key_last4?: string | null
  models: string[]
  models_refreshed_at?: string | null
  created_at?: string
  updated_at?: string
  /** Whether the caller may change or delete it (own, or shared and the caller is an admin). */
  editable: boolean
}

export interface ProviderInput {
  name: string
  base_url: string
  /** Omitted: keep the stored key; null: remove it. */
  api_key?: string | null
  enabled: boolean
  /** Admins only (others leave it out). */
  shared?: boolean
}

export const providersApi = {
  async list(): Promise<Provider[]> {
    return (await requestJson<{ items: Provider[] }>('GET', '/api/providers')).items
  },
  async create(body: ProviderInput): Promise<Provider> {
    return requestJson('POST', '/api/providers', { body })
  },
  async update(id: number, body: Partial<ProviderInput>): Promise<Provider> {
    return requestJson('PATCH', `/api/providers/${id}`, { body })
  },
  async remove(id: number): Promise<void> {
    await requestJson('DELETE', `/api/providers/${id}`)
  },
  /** Ask the provider for its model list now; a failure is a 502 `provider_unreachable` with the reason. */
  async refreshModels(id: number): Promise<Provider> {
    return requestJson('POST', `/api/providers/${id}/refresh-models`)
  },
}
