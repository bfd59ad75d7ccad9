import ElementPlus from 'element-plus'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApp, nextTick, type App, type Component } from 'vue'
import { createMemoryHistory, createRouter, type Router } from 'vue-router'

import type { Deployment } from '@/api/deployments'
import type { ModelVersion, RegisteredModel } from '@/api/models'
import type { Provider } from '@/api/providers'
import { i18n } from '@/i18n'
import { useAuthStore } from '@/stores/auth'
import DeploymentsView from '@/views/models/DeploymentsView.vue'
import ModelDetailView from '@/views/models/ModelDetailView.vue'
import ModelsView from '@/views/models/ModelsView.vue'
import ProvidersView from '@/views/models/ProvidersView.vue'

// Mounting Element Plus views is slow on a busy machine: allow more than the default 5 s.
vi.setConfig({ testTimeout: 30_000 })

// ----- fixtures -----

const VERSION: ModelVersion = {
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

const MODEL: RegisteredModel = {
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

const PROVIDER: Provider = {
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

interface Seen {
  method: string
  path: string
  query: string
  body: unknown
}

type Handler = (req: Seen) => Response | undefined

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

function fakeServer(handler: Handler): Seen[] {
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

const flush = async () => {
  for (let i = 0; i < 12; i++) {
    await Promise.resolve()
    await nextTick()
  }
}

/** el-form-item shows an error after a short debounce (validateStateDebounced): wait it out. */
const settle = async () => {
  await flush()
  await new Promise((resolve) => setTimeout(resolve, 250))
  await flush()
}

let app: App | null = null
afterEach(() => {
  app?.unmount()
  app = null
  document.body.innerHTML = ''
  vi.unstubAllGlobals()
})

async function mountView(view: Component, path = '/'): Promise<{ el: HTMLElement; router: Router }> {
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

const byTestId = (id: string) => document.querySelector(`[data-testid="${id}"]`)
const click = (id: string) => (byTestId(id) as HTMLElement).click()
function type(id: string, value: string): void {
  const host = byTestId(id)!
  const input = (host.tagName === 'INPUT' || host.tagName === 'TEXTAREA' ? host : host.querySelector('input, textarea')) as HTMLInputElement
  input.value = value
  input.dispatchEvent(new Event('input', { bubbles: true }))
}

// ----- the pages -----

describe('models page', () => {
  it('lists registered models with their facts, the built-in demo model first, and searches by name', async () => {
    const seen = fakeServer((req) => (req.path === '/api/models' ? json(200, { items: [MODEL], total: 1 }) : undefined))
    const { el } = await mountView(ModelsView)
    expect(el.querySelector('[data-testid="model-row-demo-tiny"]')?.textContent).toContain('demo-tiny')
    const row = el.querySelector('[data-testid="model-row-5"]')!
    expect(row.textContent).toContain('ft:demo-tiny:lf:12')
    const table = el.querySelector('[data-testid="models-table"]')!.textContent!
    for (const text of ['Fine-tuned', 'alice', 'v1', 'LlamaForCausalLM', '97.3K', '2K']) expect(table).toContain(text)

    type('models-search', 'tiny')
    ;(el.querySelector('form.toolbar') as HTMLFormElement).dispatchEvent(new Event('submit', { cancelable: true }))
    await flush()
    const last = seen.filter((r) => r.path === '/api/models').pop()!
    expect(new URLSearchParams(last.query).get('q')).toBe('tiny')
    expect(new URLSearchParams(last.query).get('page')).toBe('1')
  })

  it('shows the empty state and hides the demo row when filtering fine-tuned models', async () => {
    fakeServer((req) => (req.path === '/api/models' ? json(200, { items: [], total: 0 }) : undefined))
    const { el } = await mountView(ModelsView)
    expect(el.textContent).toContain('No models yet')
    type('models-search', 'qwen')
    await flush()
    expect(el.querySelector('[data-testid="model-row-demo-tiny"]')).toBeNull()
  })

  it('checks the register form before sending and puts a server error on its field', async () => {
    const seen = fakeServer((req) => {
      if (req.path === '/api/models' && req.method === 'GET') return json(200, { items: [], total: 0 })
      if (req.path === '/api/models' && req.method === 'POST') {
        return json(409, { error: { code: 'model_name_taken', message: 'taken', details: [{ field: 'body.name', message: 'taken' }] } })
      }
      return undefined
    })
    await mountView(ModelsView)
    click('models-register')
    await flush()
    type('register-ref', 'not a hub id')
    await flush()
    click('register-submit')
    await settle()
    expect(byTestId('register-dialog')!.textContent).toContain('A Hub id looks like organisation/model.')
    expect(seen.some((r) => r.method === 'POST')).toBe(false)

    type('register-ref', 'Qwen/Qwen2.5-0.5B')
    type('register-name', 'qwen')
    await flush()
    click('register-submit')
    await settle()
    const post = seen.find((r) => r.method === 'POST')!
    expect(post.body).toEqual({ name: 'qwen', source: 'hub', ref: 'Qwen/Qwen2.5-0.5B', description: '', shared: false, download: true })
    expect(byTestId('register-dialog')!.textContent).toContain('Another model already has this name.')
  })
})

describe('model detail page', () => {
  function server(overrides: Handler = () => undefined): Seen[] {
    return fakeServer((req) => {
      const own = overrides(req)
      if (own) return own
      if (req.path === '/api/models/5' && req.method === 'GET') return json(200, MODEL)
      if (req.path === '/api/models/5/versions') return json(200, { items: [VERSION] })
      if (req.path === '/api/models/versions/21' && req.method === 'PATCH') {
        return json(200, { ...VERSION, ...(req.body as object) })
      }
      return undefined
    })
  }

  it('shows the versions and the lineage with links to the job and the dataset', async () => {
    server()
    const { el } = await mountView(ModelDetailView, '/models/5')
    expect(el.querySelector('[data-testid="model-name"]')!.textContent).toContain('ft:demo-tiny:lf:12')
    expect(el.querySelector('[data-testid="version-row-1"]')).not.toBeNull()
    expect(el.querySelector('[data-testid="lineage-base"]')!.textContent).toContain('demo-tiny')
    expect(el.querySelector('[data-testid="lineage-job-link"]')!.getAttribute('href')).toBe('/jobs/12')
    expect(el.querySelector('[data-testid="lineage-dataset-link"]')!.getAttribute('href')).toBe('/datasets/4')
    expect(el.querySelector('[data-testid="lineage-final-loss"]')!.textContent).toBe('2.346')
    expect(el.querySelector('[data-testid="lineage-eval-loss"]')!.textContent).toBe('2.5')
    // An adapter can be merged by its owner; every ready version can be deployed and chatted with.
    expect(el.querySelector('[data-testid="version-merge-1"]')).not.toBeNull()
    expect(el.querySelector('[data-testid="version-chat-1"]')).not.toBeNull()
  })

  it('adds a tag and saves the whole list', async () => {
    const seen = server()
    const { el } = await mountView(ModelDetailView, '/models/5')
    ;(el.querySelector('[data-testid="version-tag-add"]') as HTMLElement).click()
    await flush()
    type('version-tag-input', 'best')
    const input = el.querySelector('[data-testid="version-tag-input"] input, input[data-testid="version-tag-input"]') as HTMLInputElement
    input.dispatchEvent(new KeyboardEvent('keyup', { key: 'Enter', bubbles: true }))
    await flush()
    const patch = seen.find((r) => r.method === 'PATCH')!
    expect(patch.path).toBe('/api/models/versions/21')
    expect(patch.body).toEqual({ tags: ['first', 'best'] })
    expect([...el.querySelectorAll('[data-testid="version-tag"]')].map((x) => x.textContent!.trim())).toEqual(['first', 'best'])
  })

  it('queues a merge after a confirmation and links to the job', async () => {
    const merging: ModelVersion = { ...VERSION, id: 22, number: 2, weights: 'full', status: 'merging', tags: [], parent_version_id: 21 }
    const seen = server((req) =>
      req.path === '/api/models/versions/21/merge'
        ? json(201, { job: { id: 40, name: 'merge', status: 'queued' }, version: merging })
        : undefined,
    )
    const { el } = await mountView(ModelDetailView, '/models/5')
    click('version-merge-1')
    await flush()
    ;(document.querySelector('.el-message-box__btns .el-button--primary') as HTMLElement).click()
    await flush()
    expect(seen.some((r) => r.method === 'POST' && r.path === '/api/models/versions/21/merge')).toBe(true)
    expect(el.querySelector('[data-testid="merge-queued"]')!.textContent).toContain('Merge job #40 queued.')
    expect(el.querySelector('[data-testid="merge-job-link"]')!.getAttribute('href')).toBe('/jobs/40')
  })

  it('explains a refused delete (model in use) inside the dialog', async () => {
    const seen = server((req) =>
      req.method === 'DELETE'
        ? json(409, { error: { code: 'model_in_use', message: 'in use', details: [] } })
        : undefined,
    )
    await mountView(ModelDetailView, '/models/5')
    click('model-delete')
    await flush()
    ;(byTestId('delete-files')!.querySelector('input') as HTMLInputElement).click()
    await flush()
    click('delete-confirm')
    await flush()
    const del = seen.find((r) => r.method === 'DELETE')!
    expect(del.path).toBe('/api/models/5')
    expect(new URLSearchParams(del.query).get('files')).toBe('true')
    expect(byTestId('delete-error')!.textContent).toContain('This model is in use')
  })

  it('says so when the model is not visible', async () => {
    fakeServer(() => json(404, { error: { code: 'not_found', message: 'Model not found', details: [] } }))
    const { el } = await mountView(ModelDetailView, '/models/5')
    expect(el.querySelector('[data-testid="model-not-found"]')).not.toBeNull()
  })
})

describe('deployments page', () => {
  it('lists deployments with status colours and undeploys a live one', async () => {
    const items: Deployment[] = [
      { id: 1, model: 'demo-tiny', backend: 'builtin', status: 'ready', memory_bytes: 1_048_576, requests_served: 3, last_used_at: null, error: null, created_at: '2026-12-05T10:00:00Z' },
      { id: 2, model: 'broken', backend: 'builtin', status: 'failed', requests_served: 0, error: 'no weights', created_at: '2026-12-05T10:00:00Z' },
    ]
    const seen = fakeServer((req) => {
      if (req.path === '/api/deployments') return json(200, { items, total: 2, page: 1, page_size: 100 })
      if (req.path === '/api/deployments/1/stop') return json(200, { ...items[0], status: 'stopped' })
      return undefined
    })
    const { el } = await mountView(DeploymentsView)
    expect(el.querySelector('[data-testid="deployment-status-1"]')!.className).toContain('el-tag--success')
    expect(el.querySelector('[data-testid="deployment-status-2"]')!.className).toContain('el-tag--danger')
    expect(el.textContent).toContain('no weights')
    expect(el.textContent).toContain('1.0 MB')
    expect(el.querySelector('[data-testid="deployment-stop-2"]')).toBeNull()
    click('deployment-stop-1')
    await flush()
    ;(document.querySelector('.el-message-box__btns .el-button--primary') as HTMLElement).click()
    await flush()
    expect(seen.some((r) => r.method === 'POST' && r.path === '/api/deployments/1/stop')).toBe(true)
  })
})

describe('providers page', () => {
  it('lists providers with a masked key and refuses a bad URL before sending', async () => {
    const seen = fakeServer((req) => {
      if (req.path === '/api/providers' && req.method === 'GET') return json(200, { items: [PROVIDER] })
      if (req.path === '/api/providers' && req.method === 'POST') return json(201, { ...PROVIDER, id: 4, name: 'vllm', has_api_key: false, models: [] })
      return undefined
    })
    const { el } = await mountView(ProvidersView)
    expect(el.querySelector('[data-testid="provider-key-ollama"]')!.textContent).toBe('••••abcd')
    expect(el.querySelector('[data-testid="provider-count-ollama"]')!.textContent).toBe('1')

    click('providers-add')
    await flush()
    type('provider-name', 'vllm')
    type('provider-base-url', 'localhost:8000')
    await flush()
    click('provider-submit')
    await settle()
    expect(byTestId('provider-dialog')!.textContent).toContain('An http:// or https:// URL')
    expect(seen.some((r) => r.method === 'POST')).toBe(false)

    type('provider-base-url', 'http://127.0.0.1:8000/v1')
    await flush()
    click('provider-submit')
    await flush()
    expect(seen.find((r) => r.method === 'POST')!.body).toEqual({
      name: 'vllm',
      base_url: 'http://127.0.0.1:8000/v1',
      enabled: true,
    })
  })

  it('shows why a model refresh failed next to the provider', async () => {
    fakeServer((req) => {
      if (req.path === '/api/providers') return json(200, { items: [PROVIDER] })
      if (req.path === '/api/providers/3/refresh-models') {
        return json(502, { error: { code: 'provider_unreachable', message: 'Connection refused', details: [] } })
      }
      return undefined
    })
    const { el } = await mountView(ProvidersView)
    click('provider-refresh-ollama')
    await flush()
    await flush()
    expect(el.querySelector('[data-testid="provider-refresh-error-3"]')!.textContent).toContain(
      'The provider could not be reached. Connection refused',
    )
  })
})
