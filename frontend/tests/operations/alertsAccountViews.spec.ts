/**
 * The H6 views against a fake server: the invite dialog shows the link when no mail went out, the
 * reset page says so for a used link and hands the username to the login page, and the alert rules
 * page sends only what changed (null to go back to a default).
 */
import ElementPlus from 'element-plus'
import { createPinia, setActivePinia } from 'pinia'
import { describe, expect, it } from 'vitest'
import { createApp, h, type App, type Component } from 'vue'
import { RouterView, createMemoryHistory, createRouter, type Router } from 'vue-router'

import InviteUserDialog from '@/components/admin/InviteUserDialog.vue'
import { i18n } from '@/i18n'
import { useAuthStore } from '@/stores/auth'
import AlertRulesView from '@/views/operations/AlertRulesView.vue'
import ResetPasswordView from '@/views/ResetPasswordView.vue'

import { cleanUpAfterEach, fakeServer, json, settle } from '../models/harness'

cleanUpAfterEach()

const stub = { template: '<div/>' }
let app: App | null = null

async function mount(component: Component, path = '/', props: Record<string, unknown> = {}): Promise<Router> {
  const pinia = createPinia()
  setActivePinia(pinia)
  const auth = useAuthStore()
  auth.accessToken = 'token'
  auth.user = { id: 1, username: 'root', email: 'root@example.com', role: 'admin' }
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/', component: stub },
      { path: '/login', name: 'login', component: stub },
      { path: '/forgot-password', name: 'forgot-password', component: stub },
      { path: '/reset-password', name: 'reset-password', component },
      { path: '/rules', name: 'alert-rules', component },
    ],
  })
  await router.push(path)
  await router.isReady()
  i18n.global.locale.value = 'en'
  const el = document.createElement('div')
  document.body.appendChild(el)
  app?.unmount()
  app = createApp({ render: () => (path === '/' ? h(component, props) : h(RouterView)) })
  app.use(pinia).use(router).use(i18n).use(ElementPlus).mount(el)
  await settle()
  return router
}

const byId = (id: string) => document.querySelector<HTMLElement>(`[data-testid="${id}"]`)

function type(id: string, value: string): void {
  const input = byId(id)?.querySelector('input') ?? (byId(id) as HTMLInputElement | null)
  if (!input) throw new Error(`no input ${id}`)
  ;(input as HTMLInputElement).value = value
  input.dispatchEvent(new Event('input'))
  input.dispatchEvent(new Event('change'))
}

describe('invite dialog', () => {
  it('shows the link to pass on when no mail could be sent', async () => {
    const seen = fakeServer((req) =>
      req.path === '/api/admin/users/invite'
        ? json(201, {
            user: { id: 9, username: 'newbie', email: 'n@example.com', role: 'researcher' },
            mail_sent: false,
            invite_url: 'http://forge.test/reset-password?token=abc&invite=1',
          })
        : undefined,
    )
    await mount(InviteUserDialog, '/', { modelValue: true })
    type('invite-username', 'newbie')
    type('invite-email', 'n@example.com')
    byId('invite-submit')?.click()
    await settle()
    expect(seen.find((r) => r.path === '/api/admin/users/invite')?.body).toEqual({
      username: 'newbie',
      email: 'n@example.com',
      role: 'researcher',
    })
    expect(byId('invite-not-sent')?.textContent).toContain('Give newbie this link')
    // el-input puts the test id on its <input> itself.
    expect((byId('invite-link') as HTMLInputElement).value).toBe('http://forge.test/reset-password?token=abc&invite=1')
  })
})

describe('reset password page', () => {
  it('says a used link is not valid and offers a new one', async () => {
    fakeServer((req) =>
      req.path === '/api/auth/password-reset/confirm'
        ? json(400, {
            error: { code: 'invalid_token', message: 'bad', details: [{ field: 'body.token', message: 'x' }] },
          })
        : undefined,
    )
    await mount(ResetPasswordView, '/reset-password?token=used')
    type('reset-password', 'a-long-passphrase')
    type('reset-confirm', 'a-long-passphrase')
    byId('reset-submit')?.click()
    await settle()
    expect(byId('reset-invalid')?.textContent).toContain('This link is not valid')
    expect(byId('reset-request-new')).not.toBeNull()
  })

  it('reads as a welcome for an invitation and leads to the login page with the username', async () => {
    const seen = fakeServer((req) =>
      req.path === '/api/auth/password-reset/confirm'
        ? json(200, { detail: 'ok', purpose: 'invite', username: 'newbie' })
        : undefined,
    )
    const router = await mount(ResetPasswordView, '/reset-password?token=tok&invite=1')
    expect(document.body.textContent).toContain('You have been invited to LoRAForge')
    type('reset-password', 'a-long-passphrase')
    type('reset-confirm', 'a-long-passphrase')
    byId('reset-submit')?.click()
    await settle()
    expect(seen.at(-1)?.body).toEqual({ token: 'tok', new_password: 'a-long-passphrase' })
    expect(router.currentRoute.value.name).toBe('login')
    expect(router.currentRoute.value.query).toEqual({ reset: '1', username: 'newbie' })
  })

  it('asks for the mailed link when the page has no token', async () => {
    fakeServer(() => undefined)
    await mount(ResetPasswordView, '/reset-password')
    expect(byId('reset-invalid')?.textContent).toContain('needs the link from your email')
    expect(byId('reset-form')).toBeNull()
  })
})

describe('alert rules page', () => {
  const values = {
    gpu_temperature_c: null,
    gpu_memory_percent: 95,
    disk_free_gb: 50,
    job_hung_minutes: 30,
    job_hung_action: 'alert',
    node_failures: 3,
    node_failures_window_hours: 24,
  }
  const view = (overridden: string[], disk = 50) => ({
    values: { ...values, disk_free_gb: disk },
    defaults: { ...values, disk_free_gb: 5 },
    overridden,
  })

  it('shows defaults, sends only what changed, and null to go back to a default', async () => {
    const seen = fakeServer((req) => {
      if (req.path !== '/api/alerts/rules') return undefined
      if (req.method === 'GET') return json(200, view(['disk_free_gb']))
      const body = req.body as Record<string, unknown>
      return json(200, body.disk_free_gb === null ? view([], 5) : view(['disk_free_gb', 'node_failures']))
    })
    await mount(AlertRulesView, '/rules')
    expect(byId('rule-default-disk_free_gb')?.textContent).toContain('Default: 5 GB')
    expect(byId('rule-default-gpu_temperature_c')?.textContent).toContain("each GPU's slowdown temperature")
    expect(byId('rule-changed-disk_free_gb')).not.toBeNull()
    expect(byId('rule-changed-node_failures')).toBeNull()

    type('rule-node_failures', '7')
    await settle()
    byId('rules-save')?.click()
    await settle()
    expect(seen.filter((r) => r.method === 'PUT').map((r) => r.body)).toEqual([{ node_failures: 7 }])
    expect(byId('rule-changed-node_failures')).not.toBeNull()

    byId('rule-reset-disk_free_gb')?.click()
    await settle()
    expect(seen.filter((r) => r.method === 'PUT').at(-1)?.body).toEqual({ disk_free_gb: null })
    expect(byId('rule-changed-disk_free_gb')).toBeNull()
  })

  it('refuses a value out of the server’s bounds without sending it', async () => {
    const seen = fakeServer((req) => (req.path === '/api/alerts/rules' ? json(200, view([])) : undefined))
    await mount(AlertRulesView, '/rules')
    type('rule-gpu_memory_percent', '0')
    await settle()
    byId('rules-save')?.click()
    await settle()
    expect(seen.filter((r) => r.method === 'PUT')).toEqual([])
    expect(document.body.textContent).toContain('More than 0')
  })
})
