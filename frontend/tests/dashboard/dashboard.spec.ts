import ElementPlus from 'element-plus'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApp, type App } from 'vue'
import { createMemoryHistory, createRouter } from 'vue-router'

import type { Job } from '@/api/jobs'
import type { HostInfo } from '@/api/system'
import { i18n } from '@/i18n'
import { useAuthStore } from '@/stores/auth'
import DashboardView from '@/views/DashboardView.vue'

import { fakeServer, flush, json, type Seen } from '../models/harness'

const HOST: HostInfo = {
  cpu_count: 8,
  cpu_percent: 12.5,
  memory_total_bytes: 16 * 1024 ** 3,
  memory_used_bytes: 4 * 1024 ** 3,
  gpus: [],
  disk: { total_bytes: 500 * 1024 ** 3, free_bytes: 200 * 1024 ** 3 },
}

function job(id: number, partial: Partial<Job> = {}): Job {
  return {
    id,
    owner_id: 1,
    name: `run-${id}`,
    status: 'running',
    priority: 0,
    spec: { model_name_or_path: 'demo-tiny' },
    dataset_id: 1,
    dataset_version_id: 1,
    executor: 'local',
    exit_code: null,
    error: null,
    progress: 0.4,
    last_event_seq: 0,
    created_at: '2026-11-22T08:00:00Z',
    updated_at: '2026-11-22T08:00:00Z',
    queued_at: '2026-11-22T08:00:00Z',
    started_at: '2026-11-22T08:00:01Z',
    finished_at: null,
    ...partial,
  } as Job
}

const page = <T>(items: T[]) => json(200, { items, total: items.length, page: 1, page_size: 5 })

interface World {
  jobs: Job[]
  queued: { position: number; job: Job }[]
  host: HostInfo
}

function serve(world: World): Seen[] {
  return fakeServer((req) => {
    if (req.path === '/api/jobs') return page(world.jobs)
    if (req.path === '/api/queue')
      return json(200, { queued: world.queued, active: world.jobs.filter((j) => j.status === 'running') })
    if (req.path === '/api/datasets') return page([])
    if (req.path === '/api/models') return page([])
    if (req.path === '/api/system/host') return json(200, world.host)
    return undefined
  })
}

let app: App | null = null

afterEach(() => {
  app?.unmount()
  app = null
  document.body.innerHTML = ''
  vi.unstubAllGlobals()
  vi.useRealTimers()
})

async function mountDashboard(): Promise<HTMLElement> {
  const pinia = createPinia()
  setActivePinia(pinia)
  const auth = useAuthStore()
  auth.accessToken = 'token'
  auth.user = { id: 1, username: 'alice', email: 'alice@example.com', role: 'researcher' }
  const stub = { template: '<div/>' }
  const names = ['jobs', 'job-new', 'job-detail', 'datasets', 'dataset-detail', 'models', 'model-detail']
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/', name: 'dashboard', component: stub },
      ...names.map((name) => ({ path: `/${name}/:id?`, name, component: stub })),
    ],
  })
  await router.push('/')
  await router.isReady()
  const el = document.createElement('div')
  document.body.appendChild(el)
  app = createApp(DashboardView).use(pinia).use(router).use(i18n).use(ElementPlus)
  app.mount(el)
  await flush()
  return el
}

const byTestId = (id: string) => document.querySelector<HTMLElement>(`[data-testid="${id}"]`)

describe('dashboard', () => {
  it('leads a new user to a first run, and every empty panel says what to do next', async () => {
    serve({ jobs: [], queued: [], host: HOST })
    const el = await mountDashboard()

    expect(byTestId('dashboard-first-run')?.querySelector('[data-testid="train-demo"]')).not.toBeNull()
    expect(byTestId('dashboard-new-job')?.textContent).toContain('New job')
    expect(byTestId('dashboard-upload-dataset')?.textContent).toContain('Upload a dataset')
    expect(byTestId('dashboard-add-model')?.textContent).toContain('Add a model')
    expect(byTestId('dashboard-queue-position')?.textContent).toContain('None of your jobs is waiting.')
    expect(byTestId('dashboard-host-cpu')?.textContent).toContain('8 cores')
    expect(byTestId('dashboard-host-memory')?.textContent).toContain('4.0 GB of 16 GB')
    expect(byTestId('dashboard-host-disk')?.textContent).toContain('200 GB free of 500 GB')
    expect(byTestId('dashboard-host-no-gpu')).not.toBeNull()
    // Each panel but the machine links to its page.
    for (const panel of ['jobs', 'queue', 'datasets', 'models']) {
      expect(byTestId(`dashboard-panel-${panel}-link`)?.getAttribute('href')).toMatch(/^\/(jobs|datasets|models)/)
    }
    expect(el.textContent).not.toMatch(/coming soon|once .* lands/i)
  })

  it("follows my running job's progress until it ends, then stops asking", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const world: World = {
      jobs: [job(7)],
      queued: [{ position: 3, job: job(8, { status: 'queued', progress: null }) }],
      host: { ...HOST, gpus: [{ index: 0, util_pct: 55, mem_used_mb: 2048, mem_total_mb: 81920 }] },
    }
    const seen = serve(world)
    await mountDashboard()

    expect(byTestId('dashboard-first-run')).toBeNull()
    expect(byTestId('dashboard-job-status-7')?.textContent).toContain('Running')
    expect(byTestId('dashboard-job-progress-7')?.textContent).toContain('40%')
    expect(byTestId('dashboard-queue-position')?.textContent).toContain('#3')
    expect(byTestId('dashboard-host-gpu-0')?.textContent).toContain('2.0 GB of 80 GB')

    world.jobs = [job(7, { progress: 0.8 })]
    await vi.advanceTimersByTimeAsync(3000)
    await flush()
    expect(byTestId('dashboard-job-progress-7')?.textContent).toContain('80%')

    world.jobs = [job(7, { status: 'succeeded', progress: 1 })]
    await vi.advanceTimersByTimeAsync(3000)
    await flush()
    expect(byTestId('dashboard-job-status-7')?.textContent).toContain('Succeeded')
    const reads = seen.filter((r) => r.path === '/api/jobs').length
    await vi.advanceTimersByTimeAsync(9000)
    await flush()
    expect(seen.filter((r) => r.path === '/api/jobs').length).toBe(reads)
  })
})
