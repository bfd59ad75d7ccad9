/** The signed-in user's own account: profile, password, API keys (login and sessions are in the auth store). */
import { api, unwrap, type ApiKey, type ApiKeyCreated, type User } from './client'
import type { components } from './schema'

type Schemas = components['schemas']
export type ProfilePatch = Schemas['ProfileUpdate']
/** `revoke_api_keys` (also revoke every API key) is off unless asked for, as on the server. */
export type PasswordChange = Omit<Schemas['PasswordChange'], 'revoke_api_keys'> & { revoke_api_keys?: boolean }
export type ApiKeyInput = Schemas['ApiKeyCreate']
export type PasswordResetDone = Schemas['PasswordResetDone']

export const accountApi = {
  async updateProfile(body: ProfilePatch): Promise<User> {
    return unwrap(await api.PATCH('/api/auth/me', { body }))
  },
  /** Other sessions are logged out; this one stays. */
  async changePassword(body: PasswordChange): Promise<void> {
    unwrap(await api.POST('/api/auth/me/password', { body: { revoke_api_keys: false, ...body } }))
  },
  async apiKeys(): Promise<ApiKey[]> {
    return unwrap(await api.GET('/api/auth/api-keys'))
  },
  async createApiKey(body: ApiKeyInput): Promise<ApiKeyCreated> {
    return unwrap(await api.POST('/api/auth/api-keys', { body }))
  },
  async revokeApiKey(id: number): Promise<void> {
    unwrap(await api.DELETE('/api/auth/api-keys/{key_id}', { params: { path: { key_id: id } } }))
  },
  /** Mails a reset link. The answer is the same whether or not the address has an account. */
  async requestPasswordReset(email: string): Promise<void> {
    unwrap(await api.POST('/api/auth/password-reset', { body: { email } }))
  },
  /** Sets the password of a reset or invitation link's account (every session of it ends); the link works once. */
  async confirmPasswordReset(token: string, newPassword: string): Promise<PasswordResetDone> {
    return unwrap(await api.POST('/api/auth/password-reset/confirm', { body: { token, new_password: newPassword } }))
  },
}
