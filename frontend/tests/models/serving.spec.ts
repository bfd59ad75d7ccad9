import { describe, expect, it, vi } from 'vitest'

import type { Deployment } from '@/api/deployments'
import DeploymentsView from '@/views/models/DeploymentsView.vue'
import ProvidersView from '@/views/models/ProvidersView.vue'

import {
  PROVIDER,
  json,
  fakeServer,
  flush,
  settle,
  mountView,
  byTestId,
  click,
  typeInto,
  cleanUpAfterEach,
} from './harness'

// Mounting Element Plus views is slow on a busy machine: allow more than the default 5 s.
vi.setConfig({ testTimeout: 30_000 })
cleanUpAfterEach()

describe('deployments page', () => {
  it('lists deployments with status colours and undeploys a live one', async () => {
    const items: Deployment[] = [
      {
        id: 1,
        model: 'demo-tiny',
        backend: 'builtin',
        status: 'ready',
        memory_bytes: 1_048_576,
        requests_served: 3,
        last_used_at: null,
        error: null,
        created_at: '2026-12-05T10:00:00Z',
      },
      {
        id: 2,
        model: 'broken',
        backend: 'builtin',
        status: 'failed',
        requests_served: 0,
        error: 'no weights',
        created_at: '2026-12-05T10:00:00Z',
      },
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
      if (req.path === '/api/providers' && req.method === 'POST')
        return json(201, { ...PROVIDER, id: 4, name: 'vllm', has_api_key: false, models: [] })
      return undefined
    })
    const { el } = await mountView(ProvidersView)
    expect(el.querySelector('[data-testid="provider-key-ollama"]')!.textContent).toBe('••••abcd')
    expect(el.querySelector('[data-testid="provider-count-ollama"]')!.textContent).toBe('1')

    click('providers-add')
    await flush()
    typeInto('provider-name', 'vllm')
    typeInto('provider-base-url', 'localhost:8000')
    await flush()
    click('provider-submit')
    await settle()
    expect(byTestId('provider-dialog')!.textContent).toContain('An http:// or https:// URL')
    expect(seen.some((r) => r.method === 'POST')).toBe(false)

    typeInto('provider-base-url', 'http://127.0.0.1:8000/v1')
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
