/**
 * The typed API client. `paths` is generated from the server's OpenAPI document
 * (`npm run gen:api`), so a renamed field or endpoint is a type error here, not a runtime bug.
 */
import createClient from 'openapi-fetch'

import { ApiError, toApiError } from './errors'
import { authFetch } from './http'
import type { components, paths } from './schema'

export const api = createClient<paths>({
  baseUrl: '',
  credentials: 'include',
  fetch: authFetch,
})

/** Throw an ApiError for a failed call, otherwise return its data. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (!result.response.ok) throw toApiError(result.response.status, result.error)
  return result.data as T
}

export { ApiError }

// Friendly names for the generated schemas; views import these, not `components` directly.
type Schemas = components['schemas']
/** The user as the login/refresh response describes them (what the session knows). */
export type SessionUser = Schemas['UserSummary']
/** The full profile from GET /api/auth/me. */
export type User = Schemas['UserPublic']
export type AdminUser = Schemas['AdminUserView']
export type Role = Schemas['Role']
export type TokenResponse = Schemas['TokenResponse']
export type ApiKey = Schemas['ApiKeyPublic']
export type ApiKeyCreated = Schemas['ApiKeyCreated']
export type AuditEntry = Schemas['AuditEntry']
export type AdminStats = Schemas['StatsResponse']

export const ROLES: readonly Role[] = ['admin', 'operator', 'researcher']
