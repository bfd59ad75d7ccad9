/**
 * fetch() with the access token attached and one refresh-and-replay on 401.
 *
 * The access token lives only in memory (the auth store); the refresh token is an HttpOnly
 * cookie the browser sends to /api/auth/refresh. When a request comes back 401, we ask the
 * store to refresh — the store shares one in-flight refresh among every caller, so N requests
 * failing together cause one refresh — and replay each request once with the new token.
 * If the refresh fails, the session is over: `onAuthFailure` sends the user to the login page.
 *
 * The helpers at the end build on it for what the typed client does not cover: hand-typed JSON
 * routes (`requestJson`), text and file downloads.
 */
import { saveResponse } from '@/lib/download'

import { toApiError } from './errors'

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

// ----- calls outside the typed client (hand-typed routes, files, text) -----

export type Query = Record<string, string | number | boolean | null | undefined>

/** `path?query`, leaving out empty values. */
export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value))
  }
  const text = params.toString()
  return text ? `${path}?${text}` : path
}

/** authFetch a URL; a non-2xx answer throws an ApiError with the server's error body. */
export async function fetchOk(url: string, init: RequestInit = {}): Promise<Response> {
  const response = await authFetch(new Request(url, { credentials: 'include', ...init }))
  if (!response.ok) throw toApiError(response.status, await response.json().catch(() => null))
  return response
}

/** One JSON call: the body is sent as JSON, a non-2xx answer throws an ApiError. */
export async function requestJson<T>(
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  path: string,
  opts: { query?: Query; body?: unknown } = {},
): Promise<T> {
  const init: RequestInit = { method, headers: { Accept: 'application/json' } }
  if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body)
    init.headers = { ...init.headers, 'Content-Type': 'application/json' }
  }
  const response = await fetchOk(withQuery(path, opts.query), init)
  if (response.status === 204) return undefined as T
  const text = await response.text()
  return (text ? JSON.parse(text) : undefined) as T
}

/** A text resource (a YAML spec, a conversation export). */
export async function fetchText(url: string): Promise<string> {
  return (await fetchOk(url)).text()
}

/**
 * Download a file. The access token lives in memory, so a plain link would arrive without it:
 * fetch with the token, then hand the browser the blob (named as the server says, else `fallbackName`).
 */
export async function downloadFile(url: string, fallbackName: string): Promise<void> {
  await saveResponse(await fetchOk(url), fallbackName)
}
