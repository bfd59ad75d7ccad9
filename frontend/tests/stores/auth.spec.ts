import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'

import { api, type TokenResponse, type User } from '@/api/client'
import { setAuthHooks } from '@/api/http'
import { SESSION_HINT_COOKIE, clearSessionHint, hasSessionHint } from '@/lib/sessionHint'
import { useAuthStore } from '@/stores/auth'

const alice: User = {
  id: 1,
  username: 'alice',
  email: 'alice@example.com',
  role: 'researcher',
  disabled: false,
  created_at: '2026-01-01T00:00:00Z',
  last_login_at: null,
}

function tokens(access: string, user: User = alice): TokenResponse {
  const { id, username, email, role } = user
  return { access_token: access, token_type: 'bearer', expires_in: 900, user: { id, username, email, role } }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

const unauthorized = () => json(401, { error: { code: 'token_expired', message: 'Token expired', details: [] } })

interface Seen {
  method: string
  path: string
  authorization: string | null
  body: string | null
}

/**
 * A tiny fake server: routes by method + path, records what it saw. `handler` returns the
 * response; it may be async to hold a request open (to make requests overlap).
 */
function fakeServer(handler: (req: Seen) => Response | Promise<Response>) {
  const seen: Seen[] = []
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(new URL(String(input), 'http://localhost/'), init)
    const body = request.method === 'GET' || request.method === 'HEAD' ? null : await request.text()
    const req: Seen = {
      method: request.method,
      path: new URL(request.url).pathname,
      authorization: request.headers.get('Authorization'),
      body: body || null,
    }
    seen.push(req)
    return handler(req)
  })
  vi.stubGlobal('fetch', fetchMock)
  return { seen, fetchMock }
}

function deferred<T>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

describe('auth store', () => {
  let onAuthFailure: ReturnType<typeof vi.fn<() => void>>

  beforeEach(() => {
    setActivePinia(createPinia())
    onAuthFailure = vi.fn<() => void>()
    setAuthHooks({ onAuthFailure })
    clearSessionHint()
  })

  /** What the server's login response leaves in the browser besides the HttpOnly refresh cookie. */
  const signedInBefore = () => (document.cookie = `${SESSION_HINT_COOKIE}=1; Path=/`)

  it('logs in, keeps the token in memory and sends it as a bearer token', async () => {
    const server = fakeServer((req) => {
      if (req.path === '/api/auth/login') return json(200, tokens('t1'))
      if (req.path === '/api/auth/me') return json(200, alice)
      return json(404, {})
    })
    const auth = useAuthStore()
    await auth.login({ username_or_email: 'alice', password: 'correct horse', remember_me: true })
    expect(auth.isAuthenticated).toBe(true)
    expect(auth.accessToken).toBe('t1')
    expect(JSON.parse(server.seen[0]!.body!)).toEqual({
      username_or_email: 'alice',
      password: 'correct horse',
      remember_me: true,
    })
    expect(localStorage.length).toBe(0)

    await auth.fetchMe()
    expect(server.seen[1]!.authorization).toBe('Bearer t1')
  })

  it('surfaces a failed login as an ApiError without trying a refresh', async () => {
    const server = fakeServer(() =>
      json(401, { error: { code: 'invalid_credentials', message: 'Wrong username or password', details: [] } }),
    )
    const auth = useAuthStore()
    await expect(
      auth.login({ username_or_email: 'alice', password: 'nope', remember_me: false }),
    ).rejects.toMatchObject({
      status: 401,
      code: 'invalid_credentials',
    })
    expect(server.seen.map((r) => r.path)).toEqual(['/api/auth/login'])
    expect(onAuthFailure).not.toHaveBeenCalled()
  })

  it('restores the session from the refresh cookie on start, once', async () => {
    const server = fakeServer((req) =>
      req.path === '/api/auth/refresh' ? json(200, tokens('restored')) : json(404, {}),
    )
    signedInBefore()
    const auth = useAuthStore()
    await Promise.all([auth.init(), auth.init()])
    await auth.init()
    expect(auth.isAuthenticated).toBe(true)
    expect(auth.user?.username).toBe('alice')
    expect(auth.initialized).toBe(true)
    expect(server.seen.filter((r) => r.path === '/api/auth/refresh')).toHaveLength(1)
  })

  it('stays logged out when the session is gone, and stops asking', async () => {
    signedInBefore()
    const server = fakeServer(() => unauthorized())
    const auth = useAuthStore()
    await auth.init()
    expect(auth.isAuthenticated).toBe(false)
    expect(auth.initialized).toBe(true)
    expect(server.seen.map((r) => r.path)).toEqual(['/api/auth/refresh'])
    // The refused refresh dropped the hint: the next page load makes no request at all.
    expect(hasSessionHint()).toBe(false)
  })

  it('makes no request at start for a visitor who never signed in (no failed request in the console)', async () => {
    const server = fakeServer(() => unauthorized())
    const auth = useAuthStore()
    await auth.init()
    expect(auth.isAuthenticated).toBe(false)
    expect(auth.initialized).toBe(true)
    expect(server.seen).toEqual([])
  })

  it('keeps the hint when the server fails for another reason (the session may still be alive)', async () => {
    signedInBefore()
    fakeServer(() => json(503, { error: { code: 'unavailable', message: 'restarting', details: [] } }))
    const auth = useAuthStore()
    await auth.init()
    expect(auth.isAuthenticated).toBe(false)
    expect(hasSessionHint()).toBe(true)
  })

  it('signs a new user in right after registering', async () => {
    const server = fakeServer((req) => {
      if (req.path === '/api/auth/register') return json(201, alice)
      if (req.path === '/api/auth/login') return json(200, tokens('t-new'))
      return json(404, {})
    })
    const auth = useAuthStore()
    const result = await auth.register({ username: 'alice', email: 'alice@example.com', password: 'pw-123456789' })
    expect(result).toEqual({ user: alice, signedIn: true })
    expect(auth.accessToken).toBe('t-new')
    expect(JSON.parse(server.seen[1]!.body!)).toEqual({
      username_or_email: 'alice',
      password: 'pw-123456789',
      remember_me: false,
    })
  })

  it('reports a registration whose sign-in was refused, without failing it', async () => {
    fakeServer((req) =>
      req.path === '/api/auth/register'
        ? json(201, alice)
        : json(429, { error: { code: 'too_many_attempts', message: 'slow down', details: [] } }),
    )
    const auth = useAuthStore()
    const result = await auth.register({ username: 'alice', email: 'alice@example.com', password: 'pw-123456789' })
    expect(result).toEqual({ user: alice, signedIn: false })
    expect(auth.isAuthenticated).toBe(false)
  })

  it('shares one in-flight refresh among concurrent 401s and replays each request', async () => {
    const refreshGate = deferred<void>()
    const server = fakeServer(async (req) => {
      if (req.path === '/api/auth/refresh') {
        await refreshGate.promise
        return json(200, tokens('fresh'))
      }
      if (req.path === '/api/auth/me') return req.authorization === 'Bearer fresh' ? json(200, alice) : unauthorized()
      if (req.path === '/api/auth/api-keys')
        return req.authorization === 'Bearer fresh' ? json(200, []) : unauthorized()
      if (req.path === '/api/auth/me/password') {
        return req.authorization === 'Bearer fresh' ? new Response(null, { status: 204 }) : unauthorized()
      }
      return json(404, {})
    })
    const auth = useAuthStore()
    auth.accessToken = 'stale'
    auth.user = alice

    const calls = Promise.all([
      api.GET('/api/auth/me'),
      api.GET('/api/auth/api-keys'),
      api.POST('/api/auth/me/password', {
        body: { current_password: 'old-password', new_password: 'new-password', revoke_api_keys: false },
      }),
    ])
    // Let all three fail with 401 and queue behind the one refresh before it answers.
    await vi.waitFor(() => expect(server.seen.filter((r) => r.path === '/api/auth/refresh')).toHaveLength(1))
    await vi.waitFor(() => expect(server.seen.filter((r) => r.authorization === 'Bearer stale')).toHaveLength(3))
    refreshGate.resolve()
    const [me, keys, password] = await calls

    expect(me.data).toEqual(alice)
    expect(keys.data).toEqual([])
    expect(password.response.status).toBe(204)
    expect(server.seen.filter((r) => r.path === '/api/auth/refresh')).toHaveLength(1)
    // The replayed POST carries its original body.
    const replayedPassword = server.seen.filter(
      (r) => r.path === '/api/auth/me/password' && r.authorization === 'Bearer fresh',
    )
    expect(replayedPassword).toHaveLength(1)
    expect(JSON.parse(replayedPassword[0]!.body!)).toEqual({
      current_password: 'old-password',
      new_password: 'new-password',
      revoke_api_keys: false,
    })
    expect(auth.accessToken).toBe('fresh')
    expect(onAuthFailure).not.toHaveBeenCalled()
  })

  it('replays only once: a 401 after the replay ends the session', async () => {
    const server = fakeServer((req) => (req.path === '/api/auth/refresh' ? json(200, tokens('fresh')) : unauthorized()))
    const auth = useAuthStore()
    auth.accessToken = 'stale'
    auth.user = alice
    const result = await api.GET('/api/auth/me')
    expect(result.response.status).toBe(401)
    expect(server.seen.filter((r) => r.path === '/api/auth/me')).toHaveLength(2)
    expect(server.seen.filter((r) => r.path === '/api/auth/refresh')).toHaveLength(1)
    expect(onAuthFailure).toHaveBeenCalledTimes(1)
  })

  it('clears the session and reports failure when the refresh is refused', async () => {
    const server = fakeServer(() => unauthorized())
    const auth = useAuthStore()
    auth.accessToken = 'stale'
    auth.user = alice
    const results = await Promise.all([api.GET('/api/auth/me'), api.GET('/api/auth/api-keys')])
    expect(results.map((r) => r.response.status)).toEqual([401, 401])
    expect(server.seen.filter((r) => r.path === '/api/auth/refresh')).toHaveLength(1)
    expect(auth.isAuthenticated).toBe(false)
    expect(auth.accessToken).toBeNull()
    expect(onAuthFailure).toHaveBeenCalled()
  })

  it('does not refresh for non-401 errors', async () => {
    const server = fakeServer(() => json(403, { error: { code: 'forbidden', message: 'Admins only', details: [] } }))
    const auth = useAuthStore()
    auth.accessToken = 't1'
    const result = await api.GET('/api/admin/stats')
    expect(result.response.status).toBe(403)
    expect(server.seen.map((r) => r.path)).toEqual(['/api/admin/stats'])
  })

  it('logs out on the server and forgets the session even if the server fails', async () => {
    const server = fakeServer(() => json(500, { error: { code: 'internal_error', message: 'boom', details: [] } }))
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const auth = useAuthStore()
    auth.accessToken = 't1'
    auth.user = alice
    await auth.logout()
    expect(server.seen[0]).toMatchObject({ method: 'POST', path: '/api/auth/logout', authorization: 'Bearer t1' })
    expect(auth.isAuthenticated).toBe(false)
  })
})
