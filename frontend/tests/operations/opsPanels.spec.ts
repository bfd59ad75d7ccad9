/**
 * The operator panels of the dashboard: every number links to the page behind it (the usage report
 * only for an admin, whose page it is), the nodes and the failures link to their own pages, and a
 * frame of the operations socket replaces the REST summary.
 */
import ElementPlus from 'element-plus'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApp, type App } from 'vue'
import { createMemoryHistory, createRouter } from 'vue-router'

import type { Role } from '@/api/client'
import type { OpsSummary } from '@/api/operations'
import OpsPanels from '@/components/dashboard/OpsPanels.vue'
import { i18n } from '@/i18n'
import { useAuthStore } from '@/stores/auth'

import { fakeServer, flush, json } from '../models/harness'

const SUMMARY: OpsSummary = {
  nodes: [
    {
      id: 3,
      name: 'gpu-box',
      status: 'ready',
      cpu_percent: 41.6,
      gpus: [{ index: 0, utilization: 87, temperature_c: 90 }],
    },
    { id: 4, name: 'cpu-box', status: 'drained', cpu_percent: 2, gpus: [] },
  ],
  queue: { queued: 5, running: 2, avg_wait_seconds: 125, oldest_wait_seconds: 3725 },
  alerts: { open: 3, critical: 1 },
  storage: { used_bytes: 3 * 1024 ** 3, free_bytes: 100 * 1024 ** 3 },
  usage_month: { month: '2026-12', jobs: 12, gpu_hours: 7.25, cpu_hours: 30, cost: 18.5, currency: 'USD' },
  recent_failures: [
    {
      job_id: 77,
      name: 'broken run',
      finished_at: '2026-12-05T10:00:00Z',
      code: 'cuda_oom',
      message: 'CUDA out of memory',
      node_name: 'gpu-box',
    },
  ],
}

/** A WebSocket the test drives. */
class FakeSocket {
  static last: FakeSocket | null = null
  onopen: (() => void) | null = null
  onmessage: ((ev: { data: string }) => void) | null = null
  onclose: ((ev: { code: number }) => void) | null = null
  onerror: (() => void) | null = null
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeSocket.last = this
  }
  close(): void {}
}

let app: App | null = null
afterEach(() => {
  app?.unmount()
  app = null
  document.body.innerHTML = ''
  vi.unstubAllGlobals()
})

async function mount(role: Role): Promise<void> {
  vi.stubGlobal('WebSocket', FakeSocket)
  fakeServer((req) => (req.path === '/api/operations/summary' ? json(200, SUMMARY) : undefined))
  const pinia = createPinia()
  setActivePinia(pinia)
  const auth = useAuthStore()
  auth.accessToken = 'token'
  auth.user = { id: 1, username: 'boss', email: 'boss@example.com', role }
  const stub = { template: '<div/>' }
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/', name: 'dashboard', component: stub },
      { path: '/jobs', name: 'jobs', component: stub },
      { path: '/jobs/:id', name: 'job-detail', component: stub },
      { path: '/operations/nodes', name: 'nodes', component: stub },
      { path: '/operations/nodes/:id', name: 'node-detail', component: stub },
      { path: '/operations/alerts', name: 'alerts', component: stub },
      { path: '/admin/usage', name: 'usage-all', component: stub },
    ],
  })
  await router.push('/')
  await router.isReady()
  const el = document.createElement('div')
  document.body.appendChild(el)
  app = createApp(OpsPanels).use(pinia).use(router).use(i18n).use(ElementPlus)
  app.mount(el)
  await flush()
}

const link = (id: string) => document.querySelector(`[data-testid="${id}"]`)?.getAttribute('href')
const text = (id: string) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.trim()

describe('operator dashboard panels', () => {
  it('links every number of an admin to its page', async () => {
    await mount('admin')
    expect(text('ops-nodes-total')).toBe('2')
    expect(link('ops-nodes-total')).toBe('/operations/nodes')
    expect(text('ops-nodes-ready')).toBe('1')
    expect(link('ops-node-cpu-3')).toBe('/operations/nodes/3')
    expect(text('ops-node-3-gpu-0')).toContain('87%')
    expect(document.querySelector('[data-testid="ops-node-3-gpu-0"] .temp')?.className).toContain('hot')
    for (const id of ['ops-queue-queued', 'ops-queue-running', 'ops-queue-avg-wait', 'ops-queue-oldest-wait'])
      expect(link(id)).toBe('/jobs?tab=queue')
    expect(text('ops-queue-queued')).toBe('5')
    expect(text('ops-queue-oldest-wait')).toBe('1h 2m 5s')
    expect(link('ops-alerts-open')).toBe('/operations/alerts')
    expect(text('ops-alerts-critical')).toBe('1')
    for (const id of [
      'ops-usage-jobs',
      'ops-usage-gpu-hours',
      'ops-usage-cpu-hours',
      'ops-usage-cost',
      'ops-storage-used',
    ])
      expect(link(id)).toBe('/admin/usage?month=2026-12')
    expect(text('ops-usage-cost')).toBe('$18.50')
    expect(text('ops-storage-used')).toBe('3.0 GB')
    expect(document.querySelector('[data-testid="ops-failure-77"] a')?.getAttribute('href')).toBe('/jobs/77')
    expect(text('ops-failure-77')).toContain('CUDA out of memory')
  })

  it("shows an operator this month's use without linking to the admin's report", async () => {
    await mount('operator')
    expect(text('ops-usage-jobs')).toBe('12')
    expect(link('ops-usage-jobs')).toBeNull()
    expect(document.querySelector('[data-testid="ops-usage-jobs"]')?.tagName).toBe('SPAN')
    expect(link('ops-queue-queued')).toBe('/jobs?tab=queue')
  })

  it('follows the socket once it is up', async () => {
    await mount('admin')
    const socket = FakeSocket.last!
    expect(socket.url).toMatch(/\/ws\/operations$/)
    expect(socket.protocols).toEqual(['loraforge.bearer', 'token'])
    socket.onmessage?.({
      data: JSON.stringify({ type: 'summary', summary: { ...SUMMARY, alerts: { open: 0, critical: 0 } } }),
    })
    await flush()
    expect(text('ops-alerts-open')).toBe('0')
    expect(document.querySelector('[data-testid="ops-connection"]')?.getAttribute('data-state')).toBe('live')
  })
})
