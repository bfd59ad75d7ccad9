/** The admin console's API: users (list, role, enable/disable, delete, password reset), stats, audit log. */
import { api, unwrap, type AdminStats, type AdminUser, type AuditEntry } from './client'
import type { components, operations } from './schema'

type Schemas = components['schemas']
export type AdminUserPatch = Schemas['AdminUserUpdate']
export type UserListQuery = NonNullable<operations['admin_list_users']['parameters']['query']>
export type AuditQuery = NonNullable<operations['admin_list_audit']['parameters']['query']>
export type PasswordResetResult = Schemas['PasswordResetResponse']
export type InviteInput = Schemas['InviteRequest']
/** `invite_url` only when the mail could not be sent: the admin passes the link on themselves. */
export type InviteResult = Schemas['InviteResult']

const byUser = (user_id: number) => ({ params: { path: { user_id } } })

export const adminApi = {
  async users(query: UserListQuery): Promise<{ items: AdminUser[]; total: number }> {
    return unwrap(await api.GET('/api/admin/users', { params: { query } }))
  },
  async updateUser(id: number, body: AdminUserPatch): Promise<AdminUser> {
    return unwrap(await api.PATCH('/api/admin/users/{user_id}', { ...byUser(id), body }))
  },
  async removeUser(id: number): Promise<void> {
    unwrap(await api.DELETE('/api/admin/users/{user_id}', byUser(id)))
  },
  /**
   * With `password` null the server makes a temporary one and returns it once. The user is logged
   * out everywhere; their API keys are revoked too unless `revokeApiKeys` is false (the server's default).
   */
  async resetPassword(id: number, password: string | null, revokeApiKeys = true): Promise<PasswordResetResult> {
    const body = { password, revoke_api_keys: revokeApiKeys }
    return unwrap(await api.POST('/api/admin/users/{user_id}/reset-password', { ...byUser(id), body }))
  },
  async stats(): Promise<AdminStats> {
    return unwrap(await api.GET('/api/admin/stats'))
  },
  async invite(body: InviteInput): Promise<InviteResult> {
    return unwrap(await api.POST('/api/admin/users/invite', { body }))
  },
  async audit(query: AuditQuery): Promise<{ items: AuditEntry[]; total: number }> {
    return unwrap(await api.GET('/api/admin/audit', { params: { query } }))
  },
}
