import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter, type Router } from 'vue-router'

import type { Role } from '@/api/client'
import { installGuards, routes } from '@/router'
import { useAuthStore } from '@/stores/auth'

function makeRouter(): Router {
  const router = createRouter({ history: createMemoryHistory(), routes })
  installGuards(router)
  return router
}

/** The start-up refresh answers with a session for `role`, or 401 when `role` is null. */
function serverWithSession(role: Role | null): void {
  // A session leaves the server's readable hint cookie; a visitor who never signed in has none.
  document.cookie = role === null ? 'loraforge_signed_in=; Max-Age=0; Path=/' : 'loraforge_signed_in=1; Path=/'
  vi.stubGlobal(
    'fetch',
    vi.fn(async () =>
      role === null
        ? new Response('{"error":{"code":"missing_refresh_token","message":"no refresh token","details":[]}}', {
            status: 401,
          })
        : new Response(
            JSON.stringify({
              access_token: 't',
              token_type: 'bearer',
              expires_in: 900,
              user: { id: 1, username: 'u', email: 'u@example.com', role },
            }),
            { status: 200 },
          ),
    ),
  )
}

describe('route guards', () => {
  beforeEach(() => setActivePinia(createPinia()))

  it('sends a visitor without a session to login, remembering where they were going', async () => {
    serverWithSession(null)
    const router = makeRouter()
    await router.push('/profile')
    expect(router.currentRoute.value.name).toBe('login')
    expect(router.currentRoute.value.query.redirect).toBe('/profile')
  })

  it('lets a visitor open login and register', async () => {
    serverWithSession(null)
    const router = makeRouter()
    await router.push('/register')
    expect(router.currentRoute.value.name).toBe('register')
  })

  it('restores the session on the first navigation (a reload stays logged in)', async () => {
    serverWithSession('researcher')
    const router = makeRouter()
    await router.push('/profile')
    expect(router.currentRoute.value.name).toBe('profile')
    expect(useAuthStore().user?.username).toBe('u')
  })

  it('keeps non-admins out of admin pages', async () => {
    serverWithSession('operator')
    const router = makeRouter()
    await router.push('/admin/users')
    expect(router.currentRoute.value.name).toBe('dashboard')
  })

  it('lets admins into admin pages', async () => {
    serverWithSession('admin')
    const router = makeRouter()
    await router.push('/admin/audit')
    expect(router.currentRoute.value.name).toBe('admin-audit')
  })

  it('sends a logged-in user away from the login page', async () => {
    serverWithSession('researcher')
    const router = makeRouter()
    await router.push('/login')
    expect(router.currentRoute.value.name).toBe('dashboard')
  })

  it('shows the not-found page for unknown paths, behind login', async () => {
    serverWithSession('researcher')
    const router = makeRouter()
    await router.push('/no/such/page')
    expect(router.currentRoute.value.name).toBe('not-found')
  })
})
