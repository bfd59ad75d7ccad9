import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick, ref } from 'vue'

import { useJobStream, type JobStreamOptions } from '@/composables/useJobStream'
import {
  CLOSE_NOT_FOUND,
  CLOSE_UNAUTHENTICATED,
  SUBPROTOCOL,
  appendPoint,
  backoffDelay,
  tokenExpired,
  type SocketLike,
} from '@/lib/jobStream'

/** A WebSocket stand-in the test drives: it records what was opened and lets us push frames. */
class FakeSocket implements SocketLike {
  static all: FakeSocket[] = []
  onopen: ((ev: Event) => unknown) | null = null
  onmessage: ((ev: MessageEvent) => unknown) | null = null
  onclose: ((ev: CloseEvent) => unknown) | null = null
  onerror: ((ev: Event) => unknown) | null = null
  closedByClient = false

  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeSocket.all.push(this)
  }

  get after(): number {
    return Number(new URL(this.url).searchParams.get('after'))
  }
  send(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) } as MessageEvent)
  }
  drop(code = 1006): void {
    this.onclose?.({ code } as CloseEvent)
  }
  close(): void {
    this.closedByClient = true
  }
}

const job = (status = 'running', extra: Record<string, unknown> = {}) => ({
  id: 7,
  name: 'demo',
  status,
  progress: 0.1,
  last_event_seq: 0,
  ...extra,
})
const metric = (seq: number, step: number, loss = 1 / step) => ({
  seq,
  type: 'metric',
  ts: new Date((1_700_000_000 + seq) * 1000).toISOString(),
  step,
  loss,
  lr: 0.001,
  total_steps: 100,
})

/** A token whose `exp` is `exp` (seconds since the epoch). */
function jwt(exp: number): string {
  const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
  return `${b64({ alg: 'HS256' })}.${b64({ sub: '1', exp })}.sig`
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve()
  await nextTick()
}

function start(opts: Partial<JobStreamOptions> = {}, id = ref(7)) {
  const scope = effectScope()
  const stream = scope.run(() =>
    useJobStream(id, {
      socketFactory: (url, protocols) => new FakeSocket(url, protocols),
      getToken: () => 'token-1',
      refresh: async () => true,
      logSource: {
        tail: async () => ({ lines: ['tail line 1', 'tail line 2'], next_offset: 24 }),
        from: async (_id, offset) => ({ lines: [], next_offset: offset }),
      },
      baseUrl: 'ws://test',
      random: () => 0,
      flushMs: 0,
      ...opts,
    }),
  )!
  return { stream, scope, id }
}

describe('useJobStream', () => {
  beforeEach(() => {
    FakeSocket.all = []
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('connects with the token as a subprotocol and applies the snapshot, events and job updates', async () => {
    const { stream, scope } = start()
    await flush()
    expect(FakeSocket.all).toHaveLength(1)
    const ws = FakeSocket.all[0]!
    expect(ws.url).toBe('ws://test/ws/jobs/7?after=0')
    expect(ws.protocols).toEqual([SUBPROTOCOL, 'token-1'])
    expect(stream.state.value).toBe('connecting')

    ws.send({ type: 'snapshot', job: job(), last_seq: 2, resources: { cpu_pct: 150, rss_mb: 512, gpus: [] } })
    expect(stream.state.value).toBe('live')
    expect(stream.job.value?.status).toBe('running')
    expect(stream.resources.value?.rss_mb).toBe(512)

    ws.send({ seq: 1, type: 'status', ts: '2026-12-07T09:00:01Z', status: 'training' })
    ws.send({
      seq: 2,
      type: 'log',
      ts: '2026-12-07T09:00:02Z',
      level: 'info',
      message: 'replayed: already in the tail',
    })
    ws.send(metric(3, 1))
    ws.send({ seq: 4, type: 'eval', ts: '2026-12-07T09:00:04Z', step: 1, eval_loss: 0.9 })
    ws.send({
      seq: 5,
      type: 'log',
      ts: '2026-12-07T09:00:05Z',
      level: 'info',
      message: 'in engine.log: read by the follower',
    })
    ws.send({ seq: 6, type: 'checkpoint', ts: '2026-12-07T09:00:06Z', step: 1, path: 'checkpoints/checkpoint-1' })
    ws.send({
      seq: 7,
      type: 'resource',
      ts: '2026-12-07T09:00:07Z',
      cpu_pct: 99,
      rss_mb: 600,
      gpus: [{ index: 0, util_pct: 50 }],
    })
    ws.send({ type: 'heartbeat', ts: '2026-12-07T09:00:08Z' })
    ws.send({ type: 'job', job: job('stopping') })

    expect(stream.lastSeq.value).toBe(7)
    expect(stream.points.value.map((p) => p.step)).toEqual([1])
    expect(stream.evalPoints.value).toEqual([expect.objectContaining({ step: 1, eval_loss: 0.9 })])
    expect(stream.logs.value).toEqual(['tail line 1', 'tail line 2'])
    expect(stream.timeline.value.map((e) => e.type)).toEqual(['status', 'checkpoint'])
    expect(stream.resources.value?.gpus?.[0]?.util_pct).toBe(50)
    expect(stream.latestMetric.value?.step).toBe(1)
    expect(stream.job.value?.status).toBe('stopping')
    // A per-step progress event moves the step and ETA; the loss stays the last metric's, the curve as it was.
    ws.send({ seq: 8, type: 'progress', ts: 8, step: 2, total_steps: 100, eta_s: 50 })
    expect(stream.latestMetric.value).toMatchObject({ step: 2, eta_s: 50, loss: 1 })
    expect(stream.points.value.map((p) => p.step)).toEqual([1])
    scope.stop()
  })

  it('reconnects after a drop with after=<last seq> and drops duplicates', async () => {
    const { stream, scope } = start()
    await flush()
    const first = FakeSocket.all[0]!
    first.send({ type: 'snapshot', job: job(), last_seq: 0, resources: null })
    first.send(metric(1, 1))
    first.send(metric(2, 2))
    first.drop()
    expect(stream.state.value).toBe('reconnecting')

    vi.advanceTimersByTime(backoffDelay(0, undefined, () => 0))
    await flush()
    expect(FakeSocket.all).toHaveLength(2)
    const second = FakeSocket.all[1]!
    expect(second.after).toBe(2)
    second.send({ type: 'snapshot', job: job(), last_seq: 3, resources: null })
    // A server may replay what we already have: nothing is counted twice.
    second.send(metric(2, 2))
    second.send(metric(3, 3))
    second.send(metric(3, 3))
    expect(stream.points.value.map((p) => p.step)).toEqual([1, 2, 3])
    expect(stream.lastSeq.value).toBe(3)
    expect(stream.state.value).toBe('live')
    expect(stream.reconnects.value).toBe(1)
    scope.stop()
  })

  it('backs off exponentially while the server stays away, and resets after a snapshot', async () => {
    const { scope } = start()
    await flush()
    const delays: number[] = []
    for (let attempt = 0; attempt < 6; attempt++) {
      FakeSocket.all[FakeSocket.all.length - 1]!.drop()
      const before = FakeSocket.all.length
      // Find how long it waits: step the clock until a new socket appears.
      let waited = 0
      while (FakeSocket.all.length === before && waited < 60_000) {
        vi.advanceTimersByTime(100)
        waited += 100
        await flush()
      }
      delays.push(waited)
    }
    for (let i = 1; i < delays.length; i++) expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!)
    expect(delays[delays.length - 1]!).toBeGreaterThan(delays[0]! * 4)

    FakeSocket.all[FakeSocket.all.length - 1]!.send({ type: 'snapshot', job: job(), last_seq: 0, resources: null })
    FakeSocket.all[FakeSocket.all.length - 1]!.drop()
    const before = FakeSocket.all.length
    vi.advanceTimersByTime(backoffDelay(0, undefined, () => 0))
    await flush()
    expect(FakeSocket.all.length).toBe(before + 1)
    scope.stop()
  })

  it('computes capped, jittered delays', () => {
    const opts = { baseMs: 500, maxMs: 8000, jitter: 0.5 }
    expect([0, 1, 2, 3, 4, 5, 10].map((a) => backoffDelay(a, opts, () => 0))).toEqual([
      500, 1000, 2000, 4000, 8000, 8000, 8000,
    ])
    expect(backoffDelay(0, opts, () => 1)).toBe(750)
    expect(backoffDelay(20, opts, () => 1)).toBe(12000)
  })

  it('stops on 4404, refreshes once on 4401, and refreshes an expired token before connecting', async () => {
    const { stream, scope } = start()
    await flush()
    FakeSocket.all[0]!.drop(CLOSE_NOT_FOUND)
    vi.advanceTimersByTime(60_000)
    await flush()
    expect(stream.state.value).toBe('not_found')
    expect(FakeSocket.all).toHaveLength(1)
    scope.stop()

    FakeSocket.all = []
    let token = jwt(Date.now() / 1000 - 60)
    const refresh = vi.fn(async () => {
      token = jwt(Date.now() / 1000 + 900)
      return true
    })
    const second = start({ getToken: () => token, refresh })
    await flush()
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(FakeSocket.all[0]!.protocols[1]).toBe(token)

    FakeSocket.all[0]!.drop(CLOSE_UNAUTHENTICATED)
    await flush()
    expect(refresh).toHaveBeenCalledTimes(2)
    expect(FakeSocket.all).toHaveLength(2)
    FakeSocket.all[1]!.drop(CLOSE_UNAUTHENTICATED) // refused again without a snapshot: the session is over
    await flush()
    expect(second.stream.state.value).toBe('unauthorized')
    expect(FakeSocket.all).toHaveLength(2)
    second.scope.stop()
  })

  it('restores a missing session before connecting, and gives up when it cannot', async () => {
    let token: string | null = null
    const ok = start({ getToken: () => token, refresh: async () => ((token = 'fresh'), true) })
    await flush()
    expect(FakeSocket.all[0]!.protocols).toEqual([SUBPROTOCOL, 'fresh'])
    ok.scope.stop()

    FakeSocket.all = []
    const out = start({ getToken: () => null, refresh: async () => false })
    await flush()
    expect(FakeSocket.all).toHaveLength(0)
    expect(out.stream.state.value).toBe('unauthorized')
    out.scope.stop()
  })

  it('closes the socket when its scope ends and starts over for another job', async () => {
    const { stream, scope, id } = start()
    await flush()
    const first = FakeSocket.all[0]!
    first.send({ type: 'snapshot', job: job(), last_seq: 1, resources: null })
    first.send(metric(1, 1))
    id.value = 8
    await flush()
    expect(first.closedByClient).toBe(true)
    const second = FakeSocket.all[1]!
    expect(second.url).toBe('ws://test/ws/jobs/8?after=0')
    expect(stream.points.value).toEqual([])
    first.send(metric(2, 2)) // a late frame of the old socket is ignored
    expect(stream.points.value).toEqual([])
    scope.stop()
    expect(second.closedByClient).toBe(true)
    expect(stream.state.value).toBe('closed')
    second.drop()
    vi.advanceTimersByTime(60_000)
    await flush()
    expect(FakeSocket.all).toHaveLength(2)
  })
})

describe('log follower', () => {
  beforeEach(() => {
    FakeSocket.all = []
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('reads the tail, follows from next_offset while the job is active, and reads once more when it ends', async () => {
    const file = ['a', 'b']
    const reads: (number | 'tail')[] = []
    // A fake engine.log: each line is 2 bytes ("x\n"), so offsets are 2 × line index.
    const logSource = {
      tail: async () => {
        reads.push('tail')
        return { lines: [...file], next_offset: file.length * 2 }
      },
      from: async (_id: number, offset: number) => {
        reads.push(offset)
        const lines = file.slice(offset / 2)
        return { lines, next_offset: file.length * 2 }
      },
    }
    const { stream, scope } = start({ logSource, logPollMs: 1000 })
    await flush()
    expect(stream.logs.value).toEqual(['a', 'b'])
    const ws = FakeSocket.all[0]!
    ws.send({ type: 'snapshot', job: job('running'), last_seq: 0, resources: null })
    await flush()

    file.push('c', 'd')
    vi.advanceTimersByTime(1000)
    await flush()
    expect(stream.logs.value).toEqual(['a', 'b', 'c', 'd'])
    expect(reads).toEqual(['tail', 4, 8])

    file.push('e')
    ws.send({ type: 'job', job: job('cancelled') })
    await flush()
    expect(stream.logs.value).toEqual(['a', 'b', 'c', 'd', 'e'])
    const count = reads.length
    vi.advanceTimersByTime(10_000)
    await flush()
    expect(reads.length).toBe(count) // not following a finished job
    scope.stop()
  })
})

describe('stream helpers', () => {
  it('replaces the steps a resumed run repeats', () => {
    const points = [1, 2, 3, 4, 5].map((step) => ({ step }))
    appendPoint(points, { step: 4 })
    expect(points.map((p) => p.step)).toEqual([1, 2, 3, 4])
    appendPoint(points, { step: 6 })
    expect(points.map((p) => p.step)).toEqual([1, 2, 3, 4, 6])
  })

  it('reads a JWT expiry and lets opaque tokens through', () => {
    const now = 1_800_000_000
    expect(tokenExpired(jwt(now - 1), now)).toBe(true)
    expect(tokenExpired(jwt(now + 10), now)).toBe(true) // within the skew
    expect(tokenExpired(jwt(now + 600), now)).toBe(false)
    expect(tokenExpired('lf_abcdef', now)).toBe(false)
  })
})
