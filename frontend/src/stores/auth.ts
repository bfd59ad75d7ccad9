import { defineStore } from 'pinia'
import { computed, ref } from 'vue'

import { api, unwrap, type SessionUser, type TokenResponse, type User } from '@/api/client'
import { toApiError } from '@/api/errors'
import { setAuthHooks } from '@/api/http'
import { clearSessionHint, hasSessionHint } from '@/lib/sessionHint'

export interface LoginInput {
  username_or_email: string
  password: string
  remember_me: boolean
}

export interface RegisterInput {
  username: string
  email: string
  password: string
}

/**
 * The session. The access token is kept only in memory (never in storage, so a script injected
 * into the page cannot lift it from localStorage); the refresh token is an HttpOnly cookie
 * that the browser sends to /api/auth/refresh, which is how a reload stays logged in. A readable
 * companion cookie (lib/sessionHint.ts) says whether there is a session to restore at all.
 */
export const useAuthStore = defineStore('auth', () => {
  const accessToken = ref<string | null>(null)
  // Login and refresh return a summary (id, username, email, role); the profile page reads the
  // full record from /api/auth/me.
  const user = ref<SessionUser | null>(null)
  const initialized = ref(false)

  const isAuthenticated = computed(() => accessToken.value !== null && user.value !== null)
  const isAdmin = computed(() => user.value?.role === 'admin')
  /** Operators and admins: the operations pages (nodes, alerts, everyone's usage). */
  const isStaff = computed(() => user.value?.role === 'admin' || user.value?.role === 'operator')

  let refreshInFlight: Promise<boolean> | null = null
  let initInFlight: Promise<void> | null = null

  function setSession(tokens: TokenResponse): void {
    accessToken.value = tokens.access_token
    user.value = tokens.user
  }

  function clearSession(): void {
    accessToken.value = null
    user.value = null
  }

  async function requestRefresh(): Promise<boolean> {
    try {
      // Plain fetch: the refresh call must never itself go through refresh-on-401.
      const response = await fetch('/api/auth/refresh', { method: 'POST', credentials: 'include' })
      if (!response.ok) {
        clearSession()
        // The session is over for the server: no later page load needs to ask again. (Another
        // failure, e.g. a restarting server, says nothing about the session: keep the hint.)
        if (response.status === 401) clearSessionHint()
        return false
      }
      setSession((await response.json()) as TokenResponse)
      return true
    } catch {
      clearSession()
      return false
    }
  }

  /**
   * Refresh the access token. Concurrent callers share one request: the server rotates the
   * refresh token and treats a reused one as theft (revoking the whole family), so two
   * parallel refreshes would log the user out.
   */
  function refresh(): Promise<boolean> {
    refreshInFlight ??= requestRefresh().finally(() => {
      refreshInFlight = null
    })
    return refreshInFlight
  }

  /** On app start: restore the session from the refresh cookie if there may be one. Runs once. */
  function init(): Promise<void> {
    initInFlight ??= (hasSessionHint() ? refresh() : Promise.resolve(false)).then(() => {
      initialized.value = true
    })
    return initInFlight
  }

  async function login(input: LoginInput): Promise<SessionUser> {
    const tokens = unwrap(await api.POST('/api/auth/login', { body: input }))
    setSession(tokens)
    return tokens.user
  }

  /**
   * Create the account, then sign in with it, so a new user lands in the app rather than on the login
   * form. Resolves whether the sign-in worked too (the account exists either way; a sign-in refused,
   * e.g. by the login throttle, leaves the login form as the way in).
   */
  async function register(input: RegisterInput): Promise<{ user: User; signedIn: boolean }> {
    const user = unwrap(await api.POST('/api/auth/register', { body: input }))
    try {
      await login({ username_or_email: input.username, password: input.password, remember_me: false })
      return { user, signedIn: true }
    } catch {
      return { user, signedIn: false }
    }
  }

  async function fetchMe(): Promise<User> {
    const me = unwrap(await api.GET('/api/auth/me'))
    user.value = me
    return me
  }

  /** Replace the cached user after a profile edit. */
  function setUser(next: SessionUser): void {
    user.value = next
  }

  async function logout(): Promise<void> {
    try {
      const result = await api.POST('/api/auth/logout')
      // Logging out locally matters more than the server's answer; still surface odd errors.
      if (!result.response.ok && result.response.status !== 401) {
        console.warn('logout failed', toApiError(result.response.status, result.error))
      }
    } catch (err) {
      console.warn('logout failed', err)
    } finally {
      clearSession()
    }
  }

  setAuthHooks({ getToken: () => accessToken.value, refresh })

  return {
    accessToken,
    user,
    initialized,
    isAuthenticated,
    isAdmin,
    isStaff,
    init,
    refresh,
    login,
    register,
    fetchMe,
    setUser,
    logout,
    clearSession,
  }
})
