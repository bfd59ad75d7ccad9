import { defineStore } from 'pinia'
import { computed, ref } from 'vue'

import { notificationsApi, type AppNotification } from '@/api/notifications'
import { readSetting, writeSetting } from '@/lib/storage'

import { useAuthStore } from './auth'

/** How many notifications the bell keeps. */
export const KEEP = 30
const BROWSER_KEY = 'loraforge.browserNotifications'
/** Close codes the server uses for "who are you?" (refresh the token before reconnecting). */
const UNAUTHENTICATED = 4401
const MAX_BACKOFF_MS = 30_000

/** Reconnect delay for the n-th attempt: exponential, capped, with jitter so tabs do not stampede. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.max(0, attempt))
  return Math.round(base / 2 + (random() * base) / 2)
}

/** `ws(s)://<host>/ws/notifications?after=<id>` for the page's own origin. */
export function notificationsUrl(after: number, loc: Pick<Location, 'protocol' | 'host'> = window.location): string {
  const scheme = loc.protocol === 'https:' ? 'wss' : 'ws'
  return `${scheme}://${loc.host}/ws/notifications?after=${after}`
}

/**
 * The notification bell's state: the latest notifications and the unread count, kept live over
 * `WS /ws/notifications` (authenticated by the `loraforge.bearer` subprotocol; reconnects with
 * backoff from the last id seen, so nothing is shown twice), and optional browser notifications
 * that the user switches on with a button (the permission prompt never appears on page load).
 */
export const useNotificationsStore = defineStore('notifications', () => {
  const items = ref<AppNotification[]>([])
  const unread = ref(0)
  const connected = ref(false)
  const browserEnabled = ref(readSetting(BROWSER_KEY) === '1')

  let socket: WebSocket | null = null
  let retryTimer: ReturnType<typeof setTimeout> | null = null
  let attempt = 0
  let running = false

  const lastId = computed(() => items.value.reduce((max, item) => Math.max(max, item.id), 0))

  /** Add (or update) one notification; true when it was new. */
  function upsert(item: AppNotification): boolean {
    const index = items.value.findIndex((x) => x.id === item.id)
    if (index >= 0) {
      items.value[index] = item
      return false
    }
    items.value = [item, ...items.value].sort((a, b) => b.id - a.id).slice(0, KEEP)
    return true
  }

  async function load(): Promise<void> {
    const page = await notificationsApi.list({ page: 1, page_size: KEEP })
    items.value = [...page.items].sort((a, b) => b.id - a.id)
    unread.value = page.unread
  }

  function showInBrowser(item: AppNotification): void {
    if (!browserEnabled.value || typeof Notification === 'undefined' || Notification.permission !== 'granted') return
    try {
      new Notification(item.title, { body: item.body, tag: `loraforge-${item.id}` })
    } catch {
      // Some browsers allow notifications only from a service worker; the bell still shows it.
    }
  }

  /** Handle one server message (exported through the store for tests of the protocol). */
  function receive(raw: string): void {
    let message: { type?: string } & Partial<AppNotification>
    try {
      message = JSON.parse(raw) as typeof message
    } catch {
      return
    }
    if (message.type !== 'notification' || typeof message.id !== 'number') return
    const { type: _type, ...rest } = message
    const item = rest as AppNotification
    if (upsert(item) && !item.read_at) {
      unread.value += 1
      showInBrowser(item)
    }
  }

  function scheduleReconnect(): void {
    if (!running) return
    const delay = backoffMs(attempt)
    attempt += 1
    retryTimer = setTimeout(() => void connect(), delay)
  }

  async function connect(): Promise<void> {
    retryTimer = null
    if (!running) return
    const auth = useAuthStore()
    const token = auth.accessToken
    if (!token) {
      running = false
      return
    }
    let ws: WebSocket
    try {
      ws = new WebSocket(notificationsUrl(lastId.value), ['loraforge.bearer', token])
    } catch {
      scheduleReconnect()
      return
    }
    socket = ws
    ws.onopen = () => {
      attempt = 0
      connected.value = true
    }
    ws.onmessage = (event: MessageEvent) => {
      if (typeof event.data === 'string') receive(event.data)
    }
    ws.onclose = (event: CloseEvent) => {
      if (socket === ws) socket = null
      connected.value = false
      if (!running) return
      if (event.code === UNAUTHENTICATED) {
        // The access token expired: refresh once, then reconnect (or stop if the session is over).
        void auth.refresh().then((ok) => {
          if (ok) scheduleReconnect()
          else running = false
        })
        return
      }
      scheduleReconnect()
    }
  }

  /** Load the list and go live. Idempotent. */
  async function start(): Promise<void> {
    if (running) return
    running = true
    attempt = 0
    try {
      await load()
    } catch {
      // The socket replays what is unread; the list fills in from it.
    }
    if (running && socket === null && retryTimer === null) await connect()
  }

  function stop(): void {
    running = false
    if (retryTimer) clearTimeout(retryTimer)
    retryTimer = null
    const ws = socket
    socket = null
    connected.value = false
    ws?.close(1000)
  }

  async function markRead(ids: number[]): Promise<void> {
    const fresh = ids.filter((id) => items.value.some((x) => x.id === id && !x.read_at))
    if (fresh.length === 0) return
    const left = await notificationsApi.markRead(fresh)
    const now = new Date().toISOString()
    items.value = items.value.map((x) => (fresh.includes(x.id) ? { ...x, read_at: x.read_at ?? now } : x))
    unread.value = Math.max(0, left)
  }

  async function markAllRead(): Promise<void> {
    const left = await notificationsApi.markAllRead()
    const now = new Date().toISOString()
    items.value = items.value.map((x) => ({ ...x, read_at: x.read_at ?? now }))
    unread.value = Math.max(0, left)
  }

  /** Ask for the browser's permission (from a click) and remember the choice. */
  async function enableBrowser(): Promise<boolean> {
    if (typeof Notification === 'undefined') return false
    const permission = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission()
    browserEnabled.value = permission === 'granted'
    writeSetting(BROWSER_KEY, browserEnabled.value ? '1' : '0')
    return browserEnabled.value
  }

  function disableBrowser(): void {
    browserEnabled.value = false
    writeSetting(BROWSER_KEY, '0')
  }

  return {
    items,
    unread,
    connected,
    browserEnabled,
    lastId,
    load,
    receive,
    start,
    stop,
    markRead,
    markAllRead,
    enableBrowser,
    disableBrowser,
  }
})
