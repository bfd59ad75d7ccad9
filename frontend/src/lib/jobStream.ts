/**
 * The framework-free parts of a job's live view (see composables/useJobStream.ts): the WebSocket
 * protocol's constants, reconnect backoff, JWT expiry, the training-point rule for resumed runs,
 * the fold of metric / progress events into what the progress card shows, and the REST follower of
 * the engine log.
 */

export const CLOSE_UNAUTHENTICATED = 4401
export const CLOSE_NOT_FOUND = 4404
export const SUBPROTOCOL = 'loraforge.bearer'

/** The part of the browser's WebSocket the stream uses (tests pass a fake class). */
export interface SocketLike {
  onopen: ((ev: Event) => unknown) | null
  onmessage: ((ev: MessageEvent) => unknown) | null
  onclose: ((ev: CloseEvent) => unknown) | null
  onerror: ((ev: Event) => unknown) | null
  close(code?: number, reason?: string): void
}
export type SocketFactory = (url: string, protocols: string[]) => SocketLike

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'not_found' | 'unauthorized' | 'closed'

export interface BackoffOptions {
  /** First retry delay. */
  baseMs: number
  /** No retry waits longer than this (before jitter). */
  maxMs: number
  /** Extra random share of the delay, 0..1 (0.3 → up to +30 %). */
  jitter: number
}
export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 15_000, jitter: 0.3 }

/** Delay before reconnect attempt `attempt` (0-based): base·2^attempt, capped, plus jitter. */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random = Math.random): number {
  const exp = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(exp * (1 + opts.jitter * random()))
}

/** Whether a JWT's `exp` has passed (or will within `skewS`); unreadable tokens count as valid. */
export function tokenExpired(token: string, nowS = Date.now() / 1000, skewS = 20): boolean {
  const payload = token.split('.')[1]
  if (!payload) return false
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'))
    const exp = (JSON.parse(json) as { exp?: unknown }).exp
    return typeof exp === 'number' && exp - skewS <= nowS
  } catch {
    return false // an API key or an opaque token: let the server judge it
  }
}

/** Append a training point; a resumed run repeats steps after its checkpoint, and those replace the old ones. */
export function appendPoint<T extends { step: number }>(points: T[], point: T): void {
  const last = points[points.length - 1]
  if (last !== undefined && point.step <= last.step) {
    let keep = points.length
    while (keep > 0 && points[keep - 1]!.step >= point.step) keep--
    points.splice(keep)
  }
  points.push(point)
}

// ----- where training stands: the latest metric and progress events, folded -----

/** Fields every step's progress event carries: they replace the previous values, a null included. */
const STEP_FIELDS = ['step', 'total_steps', 'epoch', 'progress', 'elapsed_s', 'eta_s', 'tokens_per_s', 'tokens_total']
/** Timing of one attempt: meaningless once another attempt starts loading. */
const ATTEMPT_TIMING = ['elapsed_s', 'eta_s', 'tokens_per_s']
/** Statuses an attempt begins with (a resumed run starts here again). */
const ATTEMPT_START = new Set(['loading_data', 'loading_model'])

export type LiveProgress = Record<string, unknown>

/**
 * The progress card's view after one more event, in seq order: a `metric` (every logging_steps)
 * brings the loss and the rest; a `progress` (every step, at most about once a second) moves step,
 * ETA and throughput without touching the loss; a new attempt's first status drops the previous
 * attempt's timing, so a resumed run never shows the old ETA. Other events leave it as it is.
 */
export function foldProgress(
  current: LiveProgress | null,
  event: { type: string; [key: string]: unknown },
): LiveProgress | null {
  if (event.type === 'metric') return { ...current, ...event }
  if (event.type === 'progress') {
    const next: LiveProgress = { ...current }
    for (const key of STEP_FIELDS) next[key] = event[key] ?? null
    return next
  }
  if (event.type === 'status' && current !== null && ATTEMPT_START.has(String(event.status))) {
    const next: LiveProgress = { ...current }
    for (const key of ATTEMPT_TIMING) next[key] = null
    return next
  }
  return current
}

// ----- the engine log, followed over REST -----

export interface LogChunk {
  lines: string[]
  /** Where the next read starts (a byte offset the server cut at a line end). */
  next_offset: number
}

export interface LogSource {
  tail: (jobId: number) => Promise<LogChunk>
  from: (jobId: number, offset: number) => Promise<LogChunk>
}

/** Pages read in one go when a lot arrived at once. */
const MAX_PAGES_PER_READ = 20

/**
 * Follows one job's log: the tail first, then `from(next_offset)`, several pages when a lot
 * arrived. One read at a time; `reset` (another job, or the end) forgets the offset and makes the
 * answer of a read still in flight be ignored. `schedule` reads again after `pollMs`, and keeps
 * going while `keepGoing()` holds.
 */
export function createLogFollower(source: LogSource, onLines: (lines: readonly string[]) => void, pollMs: number) {
  let offset: number | null = null // where the next read starts; null before the tail
  let generation = 0
  let busyGeneration = -1 // the generation whose read is in flight
  let timer: ReturnType<typeof setTimeout> | null = null

  /** Read what the engine printed since the last read (the tail, the first time). */
  async function read(jobId: number): Promise<void> {
    const gen = generation
    if (busyGeneration === gen) return
    busyGeneration = gen
    try {
      for (let page = 0; page < MAX_PAGES_PER_READ; page++) {
        const before = offset
        const result = before === null ? await source.tail(jobId) : await source.from(jobId, before)
        if (gen !== generation) return
        if (result.lines.length > 0) onLines(result.lines)
        offset = result.next_offset
        if (before === null || result.next_offset <= before) break
      }
    } catch {
      // No log yet (a queued job) or a passing network error: the next read tries again.
    } finally {
      if (busyGeneration === gen) busyGeneration = -1
    }
  }

  function schedule(jobId: () => number, keepGoing: () => boolean): void {
    if (timer !== null) return
    timer = setTimeout(async () => {
      timer = null
      await read(jobId())
      if (keepGoing()) schedule(jobId, keepGoing)
    }, pollMs)
  }

  /** Stop the next scheduled read (a read in flight still lands). */
  function pause(): void {
    if (timer !== null) clearTimeout(timer)
    timer = null
  }

  function reset(): void {
    pause()
    generation++
    offset = null
  }

  return { read, schedule, pause, reset }
}
