/**
 * The evaluation page's live view: which jobs it follows, how their streams move the runs, when it
 * reads the evaluation again (a job ended, nothing left to follow, a socket down), and the streams
 * opened and closed as the followed jobs change.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick, ref } from 'vue'

import type { Evaluation, EvaluationRun } from '@/api/evaluations'
import {
  FALLBACK_MS,
  SETTLE_MS,
  followedJobs,
  liveEvaluation,
  liveJob,
  refetchDelay,
  type LiveJob,
} from '@/components/evaluations/liveRuns'
import { useRunStreams } from '@/components/evaluations/useRunStreams'
import type { SocketLike } from '@/lib/jobStream'

const run = (id: number, job_id: number | null, job_status: EvaluationRun['job_status']): EvaluationRun => ({
  id,
  position: id - 1,
  model: `m${id}`,
  model_kind: 'demo',
  model_id: null,
  model_version_id: null,
  job_id,
  job_status,
  cached: false,
  progress: job_status === 'succeeded' ? 1 : 0,
  eta_s: null,
  error: null,
  results: null,
})

const evaluation = (runs: EvaluationRun[], extra: Partial<Evaluation> = {}): Evaluation =>
  ({ id: 1, name: 'e', status: 'running', progress: 0, judge_job_id: null, runs, ...extra }) as Evaluation

const live = (status: LiveJob['status'], extra: Partial<LiveJob> = {}): LiveJob => ({
  state: 'live',
  status,
  progress: null,
  eta_s: null,
  ...extra,
})

describe('liveRuns', () => {
  it('follows the jobs that can still move, and the judging job while the evaluation moves', () => {
    const runs = [run(1, 11, 'succeeded'), run(2, 12, 'running'), run(3, 13, 'queued'), run(4, null, null)]
    expect(followedJobs(evaluation(runs))).toEqual([12, 13])
    const judged = evaluation([run(1, 11, 'succeeded'), run(2, 12, 'succeeded')], { judge_job_id: 20 })
    expect(followedJobs(judged)).toEqual([20])
    expect(followedJobs({ ...judged, status: 'succeeded' })).toEqual([])
    expect(followedJobs(null)).toEqual([])
  })

  it("reads a job's status, progress and ETA from its stream; the ETA only while it runs", () => {
    const latest = { progress: 0.5, eta_s: 12 }
    expect(liveJob('live', { status: 'running', progress: 0.1 }, latest)).toEqual(
      live('running', { progress: 0.5, eta_s: 12 }),
    )
    expect(liveJob('live', { status: 'running', progress: 0.1 }, null)).toEqual(live('running', { progress: 0.1 }))
    expect(liveJob('live', { status: 'failed', progress: 0.5 }, latest).eta_s).toBeNull()
    expect(liveJob('connecting', null, null)).toEqual({
      state: 'connecting',
      status: null,
      progress: null,
      eta_s: null,
    })
  })

  it('moves the runs, the mean progress and a queued evaluation that started', () => {
    const base = evaluation([run(1, 11, 'queued'), run(2, 12, 'queued')], { status: 'queued' })
    const jobs = new Map([[11, live('running', { progress: 0.5, eta_s: 3 })]])
    const moved = liveEvaluation(base, jobs)
    expect(moved.status).toBe('running')
    expect(moved.progress).toBe(0.25)
    expect(moved.runs[0]).toMatchObject({ job_status: 'running', progress: 0.5, eta_s: 3 })
    expect(moved.runs[1]).toBe(base.runs[1])
    // A stream that said nothing yet changes nothing.
    expect(liveEvaluation(base, new Map([[11, live(null)]]))).toBe(base)
    const done = liveEvaluation(base, new Map([[11, live('succeeded', { progress: 0.9 })]]))
    expect(done.runs[0]).toMatchObject({ job_status: 'succeeded', progress: 1, eta_s: null })
  })

  it('reads again only when the streams cannot tell', () => {
    const moving = evaluation([run(1, 11, 'running')])
    expect(refetchDelay(moving, [live('running')])).toBeNull()
    expect(refetchDelay(moving, [live(null, { state: 'connecting' })])).toBeNull()
    expect(refetchDelay(moving, [live('running', { state: 'reconnecting' })])).toBe(FALLBACK_MS)
    expect(refetchDelay(moving, [live('running'), live(null, { state: 'unauthorized' })])).toBe(FALLBACK_MS)
    // Every followed job ended (or none is left) while the evaluation still moves: the sync is due.
    expect(refetchDelay(moving, [live('succeeded')])).toBe(SETTLE_MS)
    expect(refetchDelay(moving, [])).toBe(SETTLE_MS)
    expect(refetchDelay({ ...moving, status: 'succeeded' }, [])).toBeNull()
    expect(refetchDelay(null, [])).toBeNull()
  })
})

class FakeSocket implements SocketLike {
  static all: FakeSocket[] = []
  onopen: ((ev: Event) => unknown) | null = null
  onmessage: ((ev: MessageEvent) => unknown) | null = null
  onclose: ((ev: CloseEvent) => unknown) | null = null
  onerror: ((ev: Event) => unknown) | null = null
  closed = false
  constructor(readonly url: string) {
    FakeSocket.all.push(this)
  }
  send(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) } as MessageEvent)
  }
  close(): void {
    this.closed = true
  }
}

const flush = async () => {
  for (let i = 0; i < 6; i++) await Promise.resolve()
  await nextTick()
}

describe('useRunStreams', () => {
  beforeEach(() => {
    FakeSocket.all = []
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('opens a jobs socket per followed job, folds its events and reports each end once', async () => {
    const ids = ref<number[]>([11, 12])
    const ended: number[] = []
    const scope = effectScope()
    const streams = scope.run(() =>
      useRunStreams(ids, {
        onFinal: (id) => ended.push(id),
        stream: {
          socketFactory: (url) => new FakeSocket(url),
          getToken: () => 'token',
          refresh: async () => true,
          baseUrl: 'ws://test',
        },
      }),
    )!
    await flush()
    expect(FakeSocket.all.map((s) => s.url)).toEqual(['ws://test/ws/jobs/11?after=0', 'ws://test/ws/jobs/12?after=0'])
    const [first, second] = FakeSocket.all as [FakeSocket, FakeSocket]

    first.send({ type: 'snapshot', job: { id: 11, status: 'running', progress: 0.1 }, last_seq: 0 })
    first.send({ seq: 1, type: 'metric', ts: 't', step: 2, total_steps: 4, progress: 0.5, eta_s: 8 })
    expect(streams.jobs.value.get(11)).toEqual(live('running', { progress: 0.5, eta_s: 8 }))
    expect(streams.jobs.value.get(12)).toEqual({ state: 'connecting', status: null, progress: null, eta_s: null })

    first.send({ type: 'job', job: { id: 11, status: 'succeeded', progress: 1 } })
    await flush()
    expect(ended).toEqual([11])
    first.send({ type: 'job', job: { id: 11, status: 'succeeded', progress: 1 } })
    await flush()
    expect(ended).toEqual([11])

    // A job already over when first heard of: the caller's copy is stale, it hears so too.
    second.send({ type: 'snapshot', job: { id: 12, status: 'failed', progress: 0.2 }, last_seq: 0 })
    await flush()
    expect(ended).toEqual([11, 12])

    // The list changes: a stream closes, a new one opens; the kept one is not reopened.
    ids.value = [12, 13]
    await flush()
    expect(first.closed).toBe(true)
    expect(second.closed).toBe(false)
    expect(FakeSocket.all.map((s) => s.url).slice(2)).toEqual(['ws://test/ws/jobs/13?after=0'])
    expect([...streams.jobs.value.keys()]).toEqual([12, 13])

    scope.stop()
    expect(FakeSocket.all.every((s) => s.closed)).toBe(true)
  })
})
