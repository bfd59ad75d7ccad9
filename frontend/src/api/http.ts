/**
 * fetch() with the access token attached and one refresh-and-replay on 401.
 *
 * The access token lives only in memory (the auth store); the refresh token is an HttpOnly
 * cookie the browser sends to /api/auth/refresh. When a request comes back 401, we ask the
 * store to refresh — the store shares one in-flight refresh among every caller, so N requests
 * failing together cause one refresh — and replay each request once with the new token.
 * If the refresh fails, the session is over: `onAuthFailure` sends the user to the login page.
 */

export interface AuthHooks {
  /** The current access token, or null when logged out. */
  getToken: () => string | null
  /** Refresh the session; resolves true when a new access token is available. */
  refresh: () => Promise<boolean>
  /** Called when a 401 could not be fixed by a refresh. */
  onAuthFailure: () => void
}

const hooks: AuthHooks = {
  getToken: () => null,
  refresh: async () => false,
  onAuthFailure: () => {},
}

export function setAuthHooks(partial: Partial<AuthHooks>): void {
  Object.assign(hooks, partial)
}

/** The same hooks, for transports that cannot go through fetch (XHR upload progress). */
export const authSession = {
  token: (): string | null => hooks.getToken(),
  refresh: (): Promise<boolean> => hooks.refresh(),
  fail: (): void => hooks.onAuthFailure(),
}

// Endpoints whose 401 means "wrong credentials / no session", never "token expired":
// refreshing for them would loop or hide the real error.
const NO_REFRESH_PATHS = ['/api/auth/login', '/api/auth/register', '/api/auth/refresh', '/api/auth/logout']

function pathOf(request: Request): string {
  try {
    return new URL(request.url).pathname
  } catch {
    return request.url
  }
}

function withToken(request: Request, token: string | null): Request {
  // A Request's headers are mutable (guard "request"); Authorization is not a forbidden name.
  if (token) request.headers.set('Authorization', `Bearer ${token}`)
  else request.headers.delete('Authorization')
  return request
}

export async function authFetch(input: Request): Promise<Response> {
  // Keep an unread copy: a Request body can be consumed only once, and we may replay it.
  const spare = input.clone()
  const sentToken = hooks.getToken()
  const response = await fetch(withToken(input, sentToken))
  if (response.status !== 401 || NO_REFRESH_PATHS.includes(pathOf(input))) return response

  // Another request may already have refreshed while this one was in flight: replay directly.
  const current = hooks.getToken()
  const refreshed = current !== null && current !== sentToken ? true : await hooks.refresh()
  if (!refreshed) {
    hooks.onAuthFailure()
    return response
  }
  const replay = await fetch(withToken(spare, hooks.getToken()))
  if (replay.status === 401) hooks.onAuthFailure()
  return replay
}
