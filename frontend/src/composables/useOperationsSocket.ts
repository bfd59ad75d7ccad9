/**
 * The operators' live view: `WS /ws/operations` kept open for as long as the component is.
 *
 * The server sends the summary and every node on connect, then again whenever something changes
 * (a sample, a drain, a job placed) or every telemetry interval, with heartbeats between. Like the
 * job stream (composables/useJobStream.ts): the access token travels as the `loraforge.bearer`
 * subprotocol, an expired token is refreshed before connecting, 4401 triggers one refresh, and a
 * dropped socket reconnects by itself with capped exponential backoff and jitter. 4403 (a
 * researcher) ends it: the page falls back to what REST gave it.
 *
 * `initial` reads the same data over REST first, so the page has numbers before the socket is up
 * (and if it never comes up); the socket's frames then replace them.
 */
import { onScopeDispose, readonly, ref, shallowRef } from 'vue'

import type { NodeView, OpsSummary } from '@/api/operations'
import {
  DEFAULT_BACKOFF,
  SUBPROTOCOL,
  backoffDelay,
  tokenExpired,
  type BackoffOptions,
  type SocketFactory,
  type SocketLike,
} from '@/lib/jobStream'
import { afterClose, opsSocketUrl, parseOpsMessage, type OpsConnectionState } from '@/lib/opsSocket'
import { useAuthStore } from '@/stores/auth'

export interface OperationsSocketOptions {
  /** Read the summary over REST before the socket is up. */
  initialSummary?: () => Promise<OpsSummary>
  /** Read the nodes over REST before the socket is up. */
  initialNodes?: () => Promise<NodeView[]>
  socketFactory?: SocketFactory
  backoff?: BackoffOptions
  random?: () => number
  getToken?: () => string | null
  refresh?: () => Promise<boolean>
  /** Socket URL (default: this page's origin). */
  url?: string
}

export function useOperationsSocket(options: OperationsSocketOptions = {}) {
  const factory: SocketFactory = options.socketFactory ?? ((url, protocols) => new WebSocket(url, protocols))
  const backoff = options.backoff ?? DEFAULT_BACKOFF
  const random = options.random ?? Math.random
  let getToken = options.getToken
  let refresh = options.refresh
  if (!getToken || !refresh) {
    const auth = useAuthStore()
    getToken ??= () => auth.accessToken
    refresh ??= () => auth.refresh()
  }

  const summary = shallowRef<OpsSummary | null>(null)
  const nodes = shallowRef<NodeView[] | null>(null)
  const state = ref<OpsConnectionState>('connecting')
  /** A REST read that failed before the socket delivered anything (the panel says so). */
  const error = ref<unknown>(null)
  /** Bumps with every frame that changed something: a page re-reads what the frames do not carry. */
  const updates = ref(0)

  let socket: SocketLike | null = null
  let timer: ReturnType<typeof setTimeout> | null = null
  let attempt = 0
  let authRetried = false
  let disposed = false

  function schedule(): void {
    if (disposed) return
    state.value = 'reconnecting'
    const delay = backoffDelay(attempt, backoff, random)
    attempt++
    timer = setTimeout(() => {
      timer = null
      void connect()
    }, delay)
  }

  function receive(text: unknown): void {
    const message = parseOpsMessage<OpsSummary, NodeView>(text)
    if (message === null) return
    if (state.value !== 'live') {
      state.value = 'live'
      attempt = 0
      authRetried = false
    }
    if (message.type === 'summary') summary.value = message.summary
    else if (message.type === 'nodes') nodes.value = message.nodes
    else return
    error.value = null
    updates.value++
  }

  async function connect(): Promise<void> {
    let token = getToken!()
    if (!token || tokenExpired(token)) {
      if (await refresh!()) token = getToken!()
    }
    if (disposed) return
    if (!token) {
      state.value = 'unauthorized'
      return
    }
    let ws: SocketLike
    try {
      ws = factory(options.url ?? opsSocketUrl(window.location), [SUBPROTOCOL, token])
    } catch {
      schedule()
      return
    }
    socket = ws
    ws.onmessage = (ev: MessageEvent) => {
      if (socket === ws) receive(ev.data)
    }
    ws.onclose = (ev: CloseEvent) => {
      if (socket !== ws) return
      socket = null
      if (disposed) return
      const next = afterClose(ev.code)
      if (next === 'forbidden') {
        state.value = 'forbidden'
        return
      }
      if (next === 'refresh') {
        // One refresh per outage: a token the server keeps refusing means the session is over.
        if (authRetried) {
          state.value = 'unauthorized'
          return
        }
        authRetried = true
        void refresh!().then((ok) => {
          if (disposed) return
          if (ok) void connect()
          else state.value = 'unauthorized'
        })
        return
      }
      schedule()
    }
    ws.onerror = () => {
      // A close event always follows; reconnecting happens there.
    }
  }

  async function readInitial(): Promise<void> {
    const reads: Promise<void>[] = []
    if (options.initialSummary)
      reads.push(
        options.initialSummary().then((value) => {
          // The socket may have been quicker: its frame is newer.
          if (!disposed && summary.value === null) summary.value = value
        }),
      )
    if (options.initialNodes)
      reads.push(
        options.initialNodes().then((value) => {
          if (!disposed && nodes.value === null) nodes.value = value
        }),
      )
    try {
      await Promise.all(reads)
    } catch (err) {
      if (!disposed && summary.value === null && nodes.value === null) error.value = err
    }
  }

  /** Try again now instead of waiting for the backoff. */
  function reconnectNow(): void {
    if (disposed || socket !== null) return
    if (timer !== null) clearTimeout(timer)
    timer = null
    attempt = 0
    authRetried = false
    void connect()
  }

  function stop(): void {
    disposed = true
    if (timer !== null) clearTimeout(timer)
    timer = null
    const ws = socket
    socket = null
    ws?.close(1000, 'page left')
    state.value = 'closed'
  }

  /** Show a node an action returned (drain, undrain) before the socket reports it. */
  function applyNode(next: NodeView): void {
    if (nodes.value === null) return
    nodes.value = nodes.value.map((node) => (node.id === next.id ? next : node))
  }

  void readInitial()
  void connect()
  onScopeDispose(stop)

  return {
    summary,
    nodes,
    error: readonly(error),
    state: readonly(state),
    updates: readonly(updates),
    applyNode,
    reconnectNow,
    stop,
  }
}
