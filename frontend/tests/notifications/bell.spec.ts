import ElementPlus from 'element-plus'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createApp, nextTick, type App } from 'vue'
import { createMemoryHistory, createRouter } from 'vue-router'

import type { AppNotification } from '@/api/notifications'
import NotificationBell from '@/components/notifications/NotificationBell.vue'
import { i18n } from '@/i18n'
import { useAuthStore } from '@/stores/auth'
import { backoffMs, notificationsUrl, useNotificationsStore } from '@/stores/notifications'

function note(id: number, partial: Partial<AppNotification> = {}): AppNotification {
  return {
    id,
    kind: 'job.succeeded',
    title: `Job ${id} succeeded`,
    body: '',
    job_id: id,
    data: {},
    created_at: '2026-11-22T08:00:00Z',
    read_at: null,
    ...partial,
  } as AppNotification
}

/** A WebSocket double: records what was opened; tests drive open/message/close. */
class FakeSocket {
  static all: FakeSocket[] = []
  onopen: (() => void) | null = null
  onmessage: ((e: { data: string }) => void) | null = null
  onclose: ((e: { code: number }) => void) | null = null
  closed = false
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeSocket.all.push(this)
  }
  open(): void {
    this.onopen?.()
  }
  send(message: object): void {
    this.onmessage?.({ data: JSON.stringify(message) })
  }
  drop(code = 1006): void {
    this.onclose?.({ code })
  }
  close(): void {
    this.closed = true
  }
}

interface Seen {
  method: string
  path: string
  body: unknown
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

function fakeServer(items: AppNotification[], unread: number) {
  const seen: Seen[] = []
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: Request) => {
      const text = input.method === 'GET' ? '' : await input.text()
      const url = new URL(input.url)
      seen.push({ method: input.method, path: url.pathname + url.search, body: text ? JSON.parse(text) : null })
      if (url.pathname === '/api/notifications')
        return json(200, { items, total: items.length, unread, page: 1, page_size: 30 })
      if (url.pathname === '/api/notifications/read') return json(200, { marked: 1, unread: 0 })
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

beforeEach(() => {
  FakeSocket.all = []
  vi.stubGlobal('WebSocket', FakeSocket)
  setActivePinia(createPinia())
  const auth = useAuthStore()
  auth.accessToken = 'access-1'
  auth.user = { id: 1, username: 'alice', email: 'a@example.com', role: 'researcher' }
})

let app: App | null = null
afterEach(() => {
  useNotificationsStore().stop()
  app?.unmount()
  app = null
  document.body.innerHTML = ''
  vi.useRealTimers()
})

describe('notifications store', () => {
  it('loads the list, then goes live from the newest id with the bearer subprotocol', async () => {
    const seen = fakeServer([note(5, { read_at: '2026-11-22T08:01:00Z' }), note(4)], 1)
    const store = useNotificationsStore()
    await store.start()
    expect(seen[0]).toMatchObject({ method: 'GET', path: '/api/notifications?page=1&page_size=30' })
    expect(store.unread).toBe(1)
    expect(FakeSocket.all).toHaveLength(1)
    expect(FakeSocket.all[0]!.url).toBe('ws://localhost/ws/notifications?after=5')
    expect(FakeSocket.all[0]!.protocols).toEqual(['loraforge.bearer', 'access-1'])

    const socket = FakeSocket.all[0]!
    socket.open()
    socket.send({ type: 'heartbeat' })
    socket.send({ type: 'notification', ...note(6, { kind: 'job.failed', title: 'Job 6 failed' }) })
    socket.send({ type: 'notification', ...note(6, { kind: 'job.failed', title: 'Job 6 failed' }) }) // replayed: no double count
    expect(store.unread).toBe(2)
    expect(store.items.map((x) => x.id)).toEqual([6, 5, 4])
  })

  it('reconnects with backoff from the last id seen', async () => {
    vi.useFakeTimers()
    fakeServer([note(2)], 1)
    const store = useNotificationsStore()
    await store.start()
    FakeSocket.all[0]!.open()
    FakeSocket.all[0]!.send({ type: 'notification', ...note(3) })
    FakeSocket.all[0]!.drop()
    expect(FakeSocket.all).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1000)
    expect(FakeSocket.all).toHaveLength(2)
    expect(FakeSocket.all[1]!.url).toBe('ws://localhost/ws/notifications?after=3')
  })

  it('marks all read on the server and locally', async () => {
    const seen = fakeServer([note(2), note(1)], 2)
    const store = useNotificationsStore()
    await store.start()
    await store.markAllRead()
    expect(seen.at(-1)).toEqual({ method: 'POST', path: '/api/notifications/read', body: { all: true } })
    expect(store.unread).toBe(0)
    expect(store.items.every((x) => x.read_at !== null)).toBe(true)
  })

  it('backs off exponentially with jitter, capped at 30 s', () => {
    expect(backoffMs(0, () => 0)).toBe(500)
    expect(backoffMs(0, () => 1)).toBe(1000)
    expect(backoffMs(3, () => 1)).toBe(8000)
    expect(backoffMs(20, () => 1)).toBe(30000)
    expect(notificationsUrl(9, { protocol: 'https:', host: 'forge.example' })).toBe(
      'wss://forge.example/ws/notifications?after=9',
    )
  })
})

describe('notification bell', () => {
  it('shows the unread count and updates it live', async () => {
    fakeServer([note(2), note(1, { read_at: '2026-11-22T08:01:00Z' })], 1)
    const router = createRouter({
      history: createMemoryHistory(),
      routes: [
        { path: '/', component: { template: '<div/>' } },
        { path: '/jobs/:id', name: 'job-detail', component: { template: '<div/>' } },
      ],
    })
    const el = document.createElement('div')
    document.body.appendChild(el)
    app = createApp(NotificationBell).use(router).use(i18n).use(ElementPlus)
    app.mount(el)
    await flush()
    const badge = () => el.querySelector('[data-testid="notification-count"] sup')
    expect(badge()?.textContent?.trim()).toBe('1')
    FakeSocket.all[0]!.open()
    FakeSocket.all[0]!.send({ type: 'notification', ...note(3, { kind: 'job.failed' }) })
    await flush()
    expect(badge()?.textContent?.trim()).toBe('2')
  })
})
