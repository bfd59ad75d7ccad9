/** What the models pages' specs share: fixtures, a fake server on fetch, mounting a view with its router. */
import ElementPlus from 'element-plus'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, vi } from 'vitest'
import { createApp, nextTick, type App, type Component } from 'vue'
import { createMemoryHistory, createRouter, type Router } from 'vue-router'

import type { ModelVersion, RegisteredModel } from '@/api/models'
import type { Provider } from '@/api/providers'
import { i18n } from '@/i18n'
import { useAuthStore } from '@/stores/auth'

// ----- fixtures -----

export const VERSION: ModelVersion = {
  id: 21,
  model_id: 5,
  number: 1,
  weights: 'adapter',
  status: 'ready',
  size_bytes: 420_000,
  tags: ['first'],
  notes: '',
  info: { architecture: 'LlamaForCausalLM', param_count: 97_344, context_length: 2048, chat_template: true },
  metrics: { final_train_loss: 2.3456, final_eval_loss: 2.5 },
  base: { name: 'demo-tiny', ref: 'demo-tiny', model_id: null, version_id: null },
  source_job: { id: 12, name: 'tiny run', status: 'succeeded' },
  dataset: { id: 4, name: 'forge-demo', version_id: 9, version_number: 1 },
  created_at: '2026-12-05T10:00:00Z',
}

export const MODEL: RegisteredModel = {
  id: 5,
  name: 'ft:demo-tiny:lf:12',
  kind: 'finetuned',
  description: '',
  shared: false,
  source: 'job',
  owner_id: 1,
  owner: 'alice',
  can_edit: true,
  current_version_id: 21,
  current_version: VERSION,
  created_at: '2026-12-05T10:00:00Z',
  updated_at: '2026-12-05T10:00:00Z',
}

export const PROVIDER: Provider = {
  id: 3,
  name: 'ollama',
  base_url: 'http://127.0.0.1:11434/v1',
  enabled: true,
  shared: false,
  owner_id: 1,
  has_api_key: true,
  api_key_last4: 'abcd',
  models: ['qwen2.5:0.5b'],
  models_refreshed_at: null,
  editable: true,
}

// ----- a fake server on fetch -----

export interface Seen {
  method: string
  path: string
  query: string
  body: unknown
}

export type Handler = (req: Seen) => Response | undefined

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

export function fakeServer(handler: Handler): Seen[] {
  const seen: Seen[] = []
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: Request) => {
      const text = input.method === 'GET' ? '' : await input.text()
      const url = new URL(input.url)
      const req = { method: input.method, path: url.pathname, query: url.search, body: text ? JSON.parse(text) : null }
      seen.push(req)
      return handler(req) ?? json(404, { error: { code: 'not_found', message: 'no', details: [] } })
    }),
  )
  return seen
}

export const flush = async () => {
  for (let i = 0; i < 12; i++) {
    await Promise.resolve()
    await nextTick()
  }
}

/** el-form-item shows an error after a short debounce (validateStateDebounced): wait it out. */
export const settle = async () => {
  await flush()
  await new Promise((resolve) => setTimeout(resolve, 250))
  await flush()
}

let app: App | null = null

/** Unmount the view and drop the fake server after each test of the calling spec file. */
export function cleanUpAfterEach(): void {
  afterEach(() => {
    app?.unmount()
    app = null
    document.body.innerHTML = ''
    vi.unstubAllGlobals()
  })
}

export async function mountView(view: Component, path = '/'): Promise<{ el: HTMLElement; router: Router }> {
  const pinia = createPinia()
  setActivePinia(pinia)
  const auth = useAuthStore()
  auth.accessToken = 'token'
  auth.user = { id: 1, username: 'alice', email: 'alice@example.com', role: 'researcher' }
  const stub = { template: '<div/>' }
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/', component: stub },
      { path: '/models', name: 'models', component: stub },
      { path: '/models/:id', name: 'model-detail', component: view },
      { path: '/jobs/:id', name: 'job-detail', component: stub },
      { path: '/datasets/:id', name: 'dataset-detail', component: stub },
      { path: '/chat', name: 'chat', component: stub },
      { path: '/deployments', name: 'deployments', component: stub },
      { path: '/evaluations/new', name: 'evaluation-new', component: stub },
      { path: '/evaluations/:id', name: 'evaluation-detail', component: stub },
    ],
  })
  await router.push(path)
  await router.isReady()
  const el = document.createElement('div')
  document.body.appendChild(el)
  app = createApp(path.startsWith('/models/') ? { template: '<router-view />' } : view)
  app.use(pinia).use(router).use(i18n).use(ElementPlus)
  app.mount(el)
  await flush()
  return { el, router }
}

export const byTestId = (id: string) => document.querySelector(`[data-testid="${id}"]`)
export const click = (id: string) => (byTestId(id) as HTMLElement).click()
export function typeInto(id: string, value: string): void {
  const host = byTestId(id)!
  const input = (
    host.tagName === 'INPUT' || host.tagName === 'TEXTAREA' ? host : host.querySelector('input, textarea')
  ) as HTMLInputElement
  input.value = value
  input.dispatchEvent(new Event('input', { bubbles: true }))
}
