import { describe, expect, it, vi } from 'vitest'

import type { ModelVersion } from '@/api/models'
import { i18n } from '@/i18n'
import ModelDetailView from '@/views/models/ModelDetailView.vue'
import ModelsView from '@/views/models/ModelsView.vue'

import {
  VERSION,
  MODEL,
  json,
  fakeServer,
  flush,
  settle,
  mountView,
  byTestId,
  click,
  typeInto,
  cleanUpAfterEach,
  type Handler,
  type Seen,
} from './harness'

// Mounting Element Plus views is slow on a busy machine: allow more than the default 5 s.
vi.setConfig({ testTimeout: 30_000 })
cleanUpAfterEach()

describe('models page', () => {
  it('lists registered models with their facts, the built-in demo model first, and searches by name', async () => {
    const seen = fakeServer((req) => (req.path === '/api/models' ? json(200, { items: [MODEL], total: 1 }) : undefined))
    const { el } = await mountView(ModelsView)
    expect(el.querySelector('[data-testid="model-row-demo-tiny"]')?.textContent).toContain('demo-tiny')
    const row = el.querySelector('[data-testid="model-row-5"]')!
    expect(row.textContent).toContain('ft:demo-tiny:lf:12')
    const table = el.querySelector('[data-testid="models-table"]')!.textContent!
    for (const text of ['Fine-tuned', 'alice', 'v1', 'LlamaForCausalLM', '97.3K', '2K']) expect(table).toContain(text)
    // Which job made it, linked (the lineage in one line of the row).
    const fromJob = el.querySelector('[data-testid="model-job-5"]')!
    expect(fromJob.textContent!.trim()).toBe('from job #12 tiny run')
    expect(fromJob.getAttribute('href')).toBe('/jobs/12')

    typeInto('models-search', 'tiny')
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
    typeInto('models-search', 'qwen')
    await flush()
    expect(el.querySelector('[data-testid="model-row-demo-tiny"]')).toBeNull()
  })

  it('checks the register form before sending and puts a server error on its field', async () => {
    const seen = fakeServer((req) => {
      if (req.path === '/api/models' && req.method === 'GET') return json(200, { items: [], total: 0 })
      if (req.path === '/api/models' && req.method === 'POST') {
        return json(409, {
          error: { code: 'model_name_taken', message: 'taken', details: [{ field: 'body.name', message: 'taken' }] },
        })
      }
      return undefined
    })
    await mountView(ModelsView)
    click('models-register')
    await flush()
    typeInto('register-ref', 'not a hub id')
    await flush()
    click('register-submit')
    await settle()
    expect(byTestId('register-dialog')!.textContent).toContain('A Hub id looks like organisation/model.')
    expect(seen.some((r) => r.method === 'POST')).toBe(false)

    typeInto('register-ref', 'Qwen/Qwen2.5-0.5B')
    typeInto('register-name', 'qwen')
    await flush()
    click('register-submit')
    await settle()
    const post = seen.find((r) => r.method === 'POST')!
    expect(post.body).toEqual({
      name: 'qwen',
      source: 'hub',
      ref: 'Qwen/Qwen2.5-0.5B',
      description: '',
      shared: false,
      download: true,
    })
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
    // What older servers wrote as the description is shown in the UI language.
    server((req) =>
      req.path === '/api/models/5'
        ? json(200, { ...MODEL, description: 'Fine-tuned by job 12 (tiny run)' })
        : undefined,
    )
    i18n.global.locale.value = 'zh-CN'
    const { el } = await mountView(ModelDetailView, '/models/5')
    i18n.global.locale.value = 'en'
    await flush()
    expect(el.querySelector('[data-testid="model-name"]')!.textContent).toContain('ft:demo-tiny:lf:12')
    const source = el.querySelector('[data-testid="model-source-job"]')!
    expect(source.textContent!.trim()).toBe('from job #12 tiny run')
    expect(source.getAttribute('href')).toBe('/jobs/12')
    expect(el.querySelector('[data-testid="version-job-1"]')!.getAttribute('href')).toBe('/jobs/12')
    expect(el.querySelector('[data-testid="model-description"]')!.textContent!.trim()).toBe(
      'Fine-tuned by job #12 (tiny run)',
    )
    i18n.global.locale.value = 'zh-CN'
    await flush()
    expect(el.querySelector('[data-testid="model-description"]')!.textContent!.trim()).toBe(
      '由任务 #12（tiny run）微调得到',
    )
    expect(source.textContent!.trim()).toBe('来自任务 #12 tiny run')
    i18n.global.locale.value = 'en'
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
    typeInto('version-tag-input', 'best')
    const input = el.querySelector(
      '[data-testid="version-tag-input"] input, input[data-testid="version-tag-input"]',
    ) as HTMLInputElement
    input.dispatchEvent(new KeyboardEvent('keyup', { key: 'Enter', bubbles: true }))
    await flush()
    const patch = seen.find((r) => r.method === 'PATCH')!
    expect(patch.path).toBe('/api/models/versions/21')
    expect(patch.body).toEqual({ tags: ['first', 'best'] })
    expect([...el.querySelectorAll('[data-testid="version-tag"]')].map((x) => x.textContent!.trim())).toEqual([
      'first',
      'best',
    ])
  })

  it('queues a merge after a confirmation and links to the job', async () => {
    const merging: ModelVersion = {
      ...VERSION,
      id: 22,
      number: 2,
      weights: 'full',
      status: 'merging',
      tags: [],
      parent_version_id: 21,
    }
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
