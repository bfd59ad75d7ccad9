import ElementPlus from 'element-plus'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApp, nextTick, type App } from 'vue'
import { createMemoryHistory, createRouter } from 'vue-router'

import { JOB_STATUSES, type Job, type QueueView } from '@/api/jobs'
import QueueBoard from '@/components/jobs/list/QueueBoard.vue'
import {
  compareQuery,
  moveInOrder,
  needsRefresh,
  presetDescription,
  progressPercent,
  sameOrder,
  statusTag,
} from '@/components/jobs/list/listing'
import { i18n } from '@/i18n'
import { useAuthStore } from '@/stores/auth'

function job(id: number, partial: Partial<Job> = {}): Job {
  return {
    id,
    owner_id: 2,
    owner: 'bob',
    name: `job-${id}`,
    status: 'queued',
    priority: 0,
    spec: { model_name_or_path: 'demo-tiny' },
    dataset_id: 1,
    dataset_version_id: 1,
    executor: 'local',
    exit_code: null,
    error: null,
    progress: null,
    last_event_seq: 0,
    created_at: '2026-11-22T08:00:00Z',
    updated_at: '2026-11-22T08:00:00Z',
    queued_at: '2026-11-22T08:00:00Z',
    started_at: null,
    finished_at: null,
    ...partial,
  } as Job
}

describe('status colours and progress', () => {
  it('gives every status a tag colour: failed red, succeeded green, running blue, waiting amber', () => {
    expect(JOB_STATUSES.map((s) => [s, statusTag(s)])).toEqual([
      ['draft', 'info'],
      ['queued', 'warning'],
      ['starting', 'primary'],
      ['running', 'primary'],
      ['stopping', 'warning'],
      ['succeeded', 'success'],
      ['failed', 'danger'],
      ['cancelled', 'info'],
      ['stopped', 'warning'],
    ])
  })

  it('shows progress in percent and polls only while something moves', () => {
    expect(progressPercent({ status: 'running', progress: 0.4567 })).toBe(45.7)
    expect(progressPercent({ status: 'succeeded', progress: 0.99 })).toBe(100)
    expect(progressPercent({ status: 'queued', progress: null })).toBe(0)
    expect(needsRefresh([{ status: 'succeeded' }, { status: 'draft' }])).toBe(false)
    expect(needsRefresh([{ status: 'succeeded' }, { status: 'queued' }])).toBe(true)
    expect(needsRefresh([{ status: 'running' }])).toBe(true)
  })

  it('builds the compare link from at least two selected jobs', () => {
    expect(compareQuery([3])).toBeNull()
    expect(compareQuery([9, 2, 5])).toEqual({ ids: '2,5,9' })
  })
})

describe('presets', () => {
  it('describes a preset from its spec in the UI language', () => {
    const lora = { method: 'lora' as const, spec: { lora_rank: 16, lora_target: 'all', precision: 'bf16' } }
    const full = { method: 'full' as const, spec: { precision: 'bf16' } }
    const t = i18n.global.t as (key: string, params?: Record<string, unknown>) => string
    expect(presetDescription(lora, t)).toBe(
      'LoRA, rank 16 on every linear layer, bf16; LLaMA-Factory’s example hyperparameters.',
    )
    i18n.global.locale.value = 'zh-CN'
    try {
      expect(presetDescription(lora, t)).toBe('LoRA，在所有线性层上使用秩 16，bf16；采用 LLaMA-Factory 示例超参数。')
      expect(presetDescription(full, t)).toBe('全参数微调，bf16；需要大显存 GPU。')
      const qlora = {
        method: 'qlora' as const,
        spec: { lora_rank: 8, lora_target: 'q_proj,v_proj', quantization_type: 'nf4' },
      }
      expect(presetDescription(qlora, t)).toContain('4 位 NF4')
      expect(presetDescription(qlora, t)).toContain('q_proj,v_proj')
    } finally {
      i18n.global.locale.value = 'en'
    }
  })
})

describe('queue order', () => {
  it('moves a dragged job before or after the row it is dropped on', () => {
    expect(moveInOrder([1, 2, 3, 4], 4, 2, 'before')).toEqual([1, 4, 2, 3])
    expect(moveInOrder([1, 2, 3, 4], 1, 3, 'after')).toEqual([2, 3, 1, 4])
    expect(moveInOrder([1, 2, 3], 2, 2, 'after')).toEqual([1, 2, 3])
    expect(moveInOrder([1, 2, 3], 9, 2, 'after')).toEqual([1, 2, 3])
    expect(sameOrder([1, 2], [1, 2])).toBe(true)
    expect(sameOrder([1, 2], [2, 1])).toBe(false)
  })
})

// ----- the queue board mounted with a fake server -----

interface Seen {
  method: string
  path: string
  body: unknown
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

function fakeServer(view: QueueView) {
  const seen: Seen[] = []
  let current = view
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: Request) => {
      const text = input.method === 'GET' ? '' : await input.text()
      const req = { method: input.method, path: new URL(input.url).pathname, body: text ? JSON.parse(text) : null }
      seen.push(req)
      if (req.path === '/api/queue' && req.method === 'GET') return json(200, current)
      if (req.path === '/api/queue/reorder') {
        const ids = (req.body as { job_ids: number[] }).job_ids
        const byId = new Map(current.queued.map((q) => [q.job.id, q.job]))
        current = { active: current.active, queued: ids.map((id, i) => ({ position: i + 1, job: byId.get(id)! })) }
        return json(200, current)
      }
      if (req.path.endsWith('/priority')) return json(200, job(Number(req.path.split('/')[3])))
      return json(404, { error: { code: 'not_found', message: 'no', details: [] } })
    }),
  )
  return seen
}

const flush = async () => {
  for (let i = 0; i < 10; i++) {
    await Promise.resolve()
    await nextTick()
  }
}

let app: App | null = null
afterEach(() => {
  app?.unmount()
  app = null
  document.body.innerHTML = ''
})

async function mountBoard(role: 'admin' | 'operator' | 'researcher'): Promise<HTMLElement> {
  const pinia = createPinia()
  setActivePinia(pinia)
  const auth = useAuthStore()
  auth.accessToken = 'token'
  auth.user = { id: 1, username: 'op', email: 'op@example.com', role }
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/', component: { template: '<div/>' } },
      { path: '/jobs/:id', name: 'job-detail', component: { template: '<div/>' } },
    ],
  })
  const el = document.createElement('div')
  document.body.appendChild(el)
  app = createApp(QueueBoard).use(pinia).use(router).use(i18n).use(ElementPlus)
  app.mount(el)
  await flush()
  return el
}

const view: QueueView = {
  active: [job(1, { status: 'running', progress: 0.5 })],
  queued: [
    { position: 1, job: job(2) },
    { position: 2, job: job(3) },
    { position: 3, job: job(4) },
  ],
}

function rowIds(el: HTMLElement): number[] {
  return [...el.querySelectorAll('[data-testid^="queue-row-"]')].map((r) =>
    Number(r.getAttribute('data-testid')!.slice(10)),
  )
}

describe('queue board', () => {
  it('lists queued jobs with positions and lets an operator drag one to a new place', async () => {
    const seen = fakeServer(view)
    const el = await mountBoard('operator')
    expect(el.querySelector('[data-testid="queue-board"]')).not.toBeNull()
    expect(rowIds(el)).toEqual([2, 3, 4])
    expect(el.querySelector('[data-testid="queue-position-3"]')!.textContent).toBe('#2')
    // Owners by name (staff see everyone's queue), not by a bare id.
    expect(el.querySelector('[data-testid="queue-owner-3"]')!.textContent!.trim()).toBe('by bob')

    // Drag job 4 by its handle and drop it on job 2 (happy-dom has no layout: the drop lands after).
    el.querySelector('[data-testid="queue-handle-4"]')!.dispatchEvent(new Event('dragstart', { bubbles: true }))
    const target = el.querySelector('[data-testid="queue-row-2"]')!
    target.dispatchEvent(new Event('dragover', { bubbles: true, cancelable: true }))
    target.dispatchEvent(new Event('drop', { bubbles: true, cancelable: true }))
    await flush()

    const reorder = seen.filter((r) => r.path === '/api/queue/reorder')
    expect(reorder).toEqual([{ method: 'POST', path: '/api/queue/reorder', body: { job_ids: [2, 4, 3] } }])
    expect(rowIds(el)).toEqual([2, 4, 3])
  })

  it('moves a job up with the arrow button (the keyboard path)', async () => {
    const seen = fakeServer(view)
    const el = await mountBoard('admin')
    ;(el.querySelector('[data-testid="queue-up-3"]') as HTMLButtonElement).click()
    await flush()
    expect(seen.find((r) => r.path === '/api/queue/reorder')?.body).toEqual({ job_ids: [3, 2, 4] })
  })

  it('shows researchers the order without drag handles', async () => {
    fakeServer(view)
    const el = await mountBoard('researcher')
    expect(rowIds(el)).toEqual([2, 3, 4])
    expect(el.querySelector('[data-testid="queue-handle-2"]')).toBeNull()
    expect(el.querySelector('[data-testid="queue-up-2"]')).toBeNull()
  })
})
