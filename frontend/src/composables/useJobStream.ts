/**
 * The live view of one job: `WS /ws/jobs/{id}?after=SEQ` kept open for as long as the page is.
 *
 * The server sends a snapshot (the job row, its last event seq, the latest resource sample), then
 * every stored event after `after`, then live events and `job` updates, with heartbeats between.
 * We keep the highest seq seen and, when the socket drops, reconnect by ourselves with exponential
 * backoff (capped, with jitter so a restarted server is not hit by every tab at once), passing
 * `after=<last seq>`; anything at or below it is a duplicate and dropped. The access token travels
 * as a subprotocol (`loraforge.bearer`, token): browsers cannot set headers on a WebSocket. An
 * expired token is refreshed before connecting; close code 4401 triggers one refresh, 4404 ends it.
 *
 * The log is the engine's whole output (library lines too, not only log events), so it is followed
 * over REST instead: the tail first, then `GET /logs?offset=<next_offset>` while the job is active.
 */
import { onScopeDispose, readonly, ref, shallowRef, unref, watch, type Ref } from 'vue'

import {
  ACTIVE_STATUSES,
  jobsApi,
  type EvalPoint,
  type JobEventAny,
  type JobView,
  type MetricPoint,
  type ResourceSample,
  type StreamMessage,
} from '@/api/jobs'
import {
  CLOSE_NOT_FOUND,
  CLOSE_UNAUTHENTICATED,
  DEFAULT_BACKOFF,
  SUBPROTOCOL,
  appendPoint,
  backoffDelay,
  createLogFollower,
  foldProgress,
  tokenExpired,
  type BackoffOptions,
  type ConnectionState,
  type LogSource,
  type SocketFactory,
  type SocketLike,
} from '@/lib/jobStream'
import { useAuthStore } from '@/stores/auth'

const TIMELINE_TYPES = new Set(['status', 'checkpoint', 'artifact', 'error'])
/** Log lines kept in memory; the viewer's download link has the whole file. */
export const MAX_LOG_LINES = 50_000

export interface JobStreamOptions {
  socketFactory?: SocketFactory
  backoff?: BackoffOptions
  random?: () => number
  /** The access token now (default: the auth store's). */
  getToken?: () => string | null
  /** Refresh the session; true when a new token is available (default: the auth store's). */
  refresh?: () => Promise<boolean>
  /** Where the log comes from (default: GET /logs?tail= then GET /logs?offset=). */
  logSource?: LogSource
  /** How often an active job's log is read for new lines. */
  logPollMs?: number
  /** Base of the socket URL (default: this page's origin as ws:// or wss://). */
  baseUrl?: string
  /** Re-render arrays at most this often (0 = after every event). */
  flushMs?: number
}

const DEFAULT_LOG_SOURCE: LogSource = {
  tail: (id) => jobsApi.logTail(id, 1000),
  from: (id, offset) => jobsApi.logPage(id, offset),
}

function defaultBaseUrl(): string {
  const { protocol, host } = window.location
  return `${protocol === 'https:' ? 'wss' : 'ws'}://${host}`
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

export function useJobStream(jobId: Ref<number> | number, options: JobStreamOptions = {}) {
  const factory: SocketFactory = options.socketFactory ?? ((url, protocols) => new WebSocket(url, protocols))
  const backoff = options.backoff ?? DEFAULT_BACKOFF
  const random = options.random ?? Math.random
  const flushMs = options.flushMs ?? 100
  let getToken = options.getToken
  let refresh = options.refresh
  if (!getToken || !refresh) {
    const auth = useAuthStore()
    getToken ??= () => auth.accessToken
    refresh ??= () => auth.refresh()
  }
  const logSource = options.logSource ?? DEFAULT_LOG_SOURCE
  const logPollMs = options.logPollMs ?? 1500

  const job = ref<JobView | null>(null)
  const state = ref<ConnectionState>('connecting')
  const lastSeq = ref(0)
  const reconnects = ref(0)
  /** The latest metric event with every later progress event folded in: step, total_steps, ETA, throughput. */
  const latestMetric = shallowRef<Record<string, unknown> | null>(null)
  const resources = shallowRef<ResourceSample | null>(null)
  // Big arrays are shallow, mutated in place and re-published (see flush): deep reactivity over
  // 10k points costs more than it gives.
  const points = shallowRef<MetricPoint[]>([])
  const evalPoints = shallowRef<EvalPoint[]>([])
  const logs = shallowRef<string[]>([])
  const timeline = shallowRef<JobEventAny[]>([])

  let socket: SocketLike | null = null
  let timer: ReturnType<typeof setTimeout> | null = null
  let attempt = 0
  let disposed = false
  let authRetried = false
  let generation = 0 // bumps when the job changes: late callbacks of an old socket are ignored
  const log = createLogFollower(logSource, appendLines, logPollMs)

  function reset(): void {
    job.value = null
    lastSeq.value = 0
    latestMetric.value = null
    resources.value = null
    points.value = []
    evalPoints.value = []
    logs.value = []
    timeline.value = []
    log.reset()
    attempt = 0
    reconnects.value = 0
    authRetried = false
  }

  function onEvent(event: JobEventAny): boolean {
    if (!isNumber(event.seq) || event.seq <= lastSeq.value) return false // a duplicate of a replay
    lastSeq.value = event.seq
    switch (event.type) {
      case 'metric': {
        latestMetric.value = foldProgress(latestMetric.value, event)
        if (isNumber(event.step)) appendPoint(points.value, event as unknown as MetricPoint)
        return true
      }
      case 'progress':
        latestMetric.value = foldProgress(latestMetric.value, event)
        return true
      case 'eval':
        if (isNumber(event.step)) appendPoint(evalPoints.value, event as unknown as EvalPoint)
        return true
      case 'resource':
        resources.value = event as ResourceSample
        return true
      case 'log':
        return false // the log follower reads these from engine.log, with everything else printed
      default:
        if (event.type === 'status') latestMetric.value = foldProgress(latestMetric.value, event)
        if (TIMELINE_TYPES.has(event.type)) timeline.value.push(event)
        return true
    }
  }

  function handle(message: StreamMessage): void {
    if (message.type === 'snapshot' && 'job' in message) {
      job.value = message.job as JobView
      if (message.resources) resources.value = message.resources as ResourceSample
      state.value = 'live'
      attempt = 0
      authRetried = false
      return
    }
    if (message.type === 'job' && 'job' in message) {
      job.value = message.job as JobView
      return
    }
    if (message.type === 'heartbeat') return
    if (onEvent(message as JobEventAny)) markDirty()
  }

  // A replay brings thousands of frames, each its own task: re-render the charts at most every
  // `flushMs` rather than once per frame.
  let flushTimer: ReturnType<typeof setTimeout> | null = null
  function flush(): void {
    flushTimer = null
    // New array references (cheap shallow copies): a child given the same array as a prop would
    // not re-render, and shallow refs do not track pushes.
    points.value = points.value.slice()
    evalPoints.value = evalPoints.value.slice()
    timeline.value = timeline.value.slice()
  }
  function markDirty(): void {
    if (flushMs <= 0) flush()
    else flushTimer ??= setTimeout(flush, flushMs)
  }

  function schedule(): void {
    if (disposed) return
    state.value = 'reconnecting'
    const delay = backoffDelay(attempt, backoff, random)
    attempt++
    timer = setTimeout(() => {
      timer = null
      reconnects.value++
      void connect()
    }, delay)
  }

  async function connect(): Promise<void> {
    const gen = generation
    const id = unref(jobId)
    let token = getToken!()
    // No token yet (a reload before the session was restored) or an expired one: refresh first.
    if (!token || tokenExpired(token)) {
      if (await refresh!()) token = getToken!()
    }
    if (disposed || gen !== generation) return
    if (!token) {
      state.value = 'unauthorized'
      return
    }
    const base = options.baseUrl ?? defaultBaseUrl()
    const ws = factory(`${base}/ws/jobs/${id}?after=${lastSeq.value}`, [SUBPROTOCOL, token])
    socket = ws
    ws.onmessage = (ev: MessageEvent) => {
      if (gen !== generation || socket !== ws) return
      let message: StreamMessage
      try {
        message = JSON.parse(String(ev.data)) as StreamMessage
      } catch {
        return // not ours to interpret
      }
      handle(message)
    }
    ws.onclose = (ev: CloseEvent) => {
      if (gen !== generation || socket !== ws) return
      socket = null
      if (disposed) return
      if (ev.code === CLOSE_NOT_FOUND) {
        state.value = 'not_found'
        return
      }
      if (ev.code === CLOSE_UNAUTHENTICATED) {
        // One refresh per outage: a token the server keeps refusing means the session is over.
        if (authRetried) {
          state.value = 'unauthorized'
          return
        }
        authRetried = true
        void refresh!().then((ok) => {
          if (gen !== generation || disposed) return
          if (ok) void connect()
          else state.value = 'unauthorized'
        })
        return
      }
      schedule()
    }
    ws.onerror = () => {
      // A close event always follows an error; reconnecting happens there.
    }
  }

  function appendLines(lines: readonly string[]): void {
    if (lines.length === 0) return
    const all = logs.value.concat(lines)
    logs.value = all.length > MAX_LOG_LINES ? all.slice(all.length - MAX_LOG_LINES) : all
  }

  const following = () => job.value !== null && ACTIVE_STATUSES.includes(job.value.status)

  function scheduleLogRead(): void {
    if (!disposed)
      log.schedule(
        () => unref(jobId),
        () => !disposed && following(),
      )
  }

  // Follow the log while the job runs, and read once more when it ends (its last lines).
  watch(
    () => job.value?.status,
    (now, before) => {
      if (now === undefined) return
      if (following()) return scheduleLogRead()
      log.pause()
      if (before !== undefined && before !== now) void log.read(unref(jobId))
    },
  )

  async function start(): Promise<void> {
    const gen = generation
    state.value = 'connecting'
    await log.read(unref(jobId))
    if (gen !== generation || disposed) return
    await connect()
  }

  function closeSocket(): void {
    if (timer !== null) clearTimeout(timer)
    timer = null
    log.pause()
    const ws = socket
    socket = null
    ws?.close(1000, 'page left')
  }

  /** Reflect a job row an action returned (stop, resume…) before the stream reports it. */
  function applyJob(next: JobView): void {
    job.value = next
  }

  /** Try again now (the indicator's "reconnect" click) instead of waiting for the backoff. */
  function reconnectNow(): void {
    if (disposed) return
    closeSocket()
    attempt = 0
    authRetried = false
    void connect()
    if (following()) scheduleLogRead()
  }

  function stop(): void {
    disposed = true
    generation++
    log.reset()
    closeSocket()
    if (flushTimer !== null) clearTimeout(flushTimer)
    flushTimer = null
    state.value = 'closed'
  }

  watch(
    () => unref(jobId),
    () => {
      generation++
      closeSocket()
      reset()
      if (!disposed) void start()
    },
    { immediate: true },
  )
  onScopeDispose(stop)

  return {
    job,
    state: readonly(state),
    lastSeq: readonly(lastSeq),
    reconnects: readonly(reconnects),
    latestMetric,
    resources,
    points,
    evalPoints,
    logs,
    timeline,
    applyJob,
    reconnectNow,
    stop,
  }
}
