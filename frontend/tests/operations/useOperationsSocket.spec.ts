import { afterEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick } from 'vue'

import type { NodeView, OpsSummary } from '@/api/operations'
import { useOperationsSocket, type OperationsSocketOptions } from '@/composables/useOperationsSocket'
import { SUBPROTOCOL, type SocketLike } from '@/lib/jobStream'

/** A WebSocket stand-in the test drives. */
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

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve()
  await nextTick()
}

const summary = (open: number) => ({ alerts: { open, critical: 0 } }) as unknown as OpsSummary
const node = (id: number, status = 'ready') => ({ id, name: `n${id}`, status }) as unknown as NodeView

function start(opts: Partial<OperationsSocketOptions> = {}) {
  const scope = effectScope()
  const live = scope.run(() =>
    useOperationsSocket({
      socketFactory: (url, protocols) => new FakeSocket(url, protocols),
      getToken: () => 'token-1',
      refresh: async () => true,
      url: 'ws://test/ws/operations',
      random: () => 0,
      backoff: { baseMs: 100, maxMs: 1000, jitter: 0 },
      ...opts,
    }),
  )!
  return { live, scope }
}

afterEach(() => {
  FakeSocket.all = []
  vi.useRealTimers()
})

describe('useOperationsSocket', () => {
  it('shows the REST reading first, then every frame the socket sends', async () => {
    const { live, scope } = start({ initialSummary: async () => summary(1), initialNodes: async () => [node(1)] })
    await flush()
    expect(live.summary.value?.alerts.open).toBe(1)
    expect(live.nodes.value?.map((n) => n.id)).toEqual([1])
    const ws = FakeSocket.all[0]!
    expect(ws.protocols).toEqual([SUBPROTOCOL, 'token-1'])
    expect(live.state.value).toBe('connecting')

    ws.send({ type: 'summary', summary: summary(3) })
    ws.send({ type: 'nodes', nodes: [node(1, 'draining'), node(2)] })
    ws.send({ type: 'heartbeat' })
    expect(live.state.value).toBe('live')
    expect(live.summary.value?.alerts.open).toBe(3)
    expect(live.nodes.value?.map((n) => n.status)).toEqual(['draining', 'ready'])
    expect(live.updates.value).toBe(2)

    // An action's answer shows at once; the next frame is the truth again.
    live.applyNode(node(2, 'drained'))
    expect(live.nodes.value?.[1]?.status).toBe('drained')

    scope.stop()
    expect(ws.closedByClient).toBe(true)
    expect(live.state.value).toBe('closed')
  })

  it('keeps a frame that arrived before the slower REST answer', async () => {
    let answer!: (value: OpsSummary) => void
    const { live, scope } = start({ initialSummary: () => new Promise((resolve) => (answer = resolve)) })
    await flush()
    FakeSocket.all[0]!.send({ type: 'summary', summary: summary(5) })
    answer(summary(1))
    await flush()
    expect(live.summary.value?.alerts.open).toBe(5)
    scope.stop()
  })

  it('reconnects with growing delays after a drop', async () => {
    vi.useFakeTimers()
    const { live, scope } = start()
    await flush()
    FakeSocket.all[0]!.drop()
    expect(live.state.value).toBe('reconnecting')
    await vi.advanceTimersByTimeAsync(99)
    expect(FakeSocket.all).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(FakeSocket.all).toHaveLength(2)
    FakeSocket.all[1]!.drop()
    await vi.advanceTimersByTimeAsync(199)
    expect(FakeSocket.all).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(1)
    expect(FakeSocket.all).toHaveLength(3)
    // A frame resets the backoff.
    FakeSocket.all[2]!.send({ type: 'heartbeat' })
    FakeSocket.all[2]!.drop()
    await vi.advanceTimersByTimeAsync(100)
    expect(FakeSocket.all).toHaveLength(4)
    scope.stop()
  })

  it('gives up on 4403 (not staff) and refreshes once on 4401', async () => {
    vi.useFakeTimers()
    const refresh = vi.fn(async () => true)
    const { live, scope } = start({ refresh })
    await flush()
    FakeSocket.all[0]!.drop(4401)
    await flush()
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(FakeSocket.all).toHaveLength(2)
    FakeSocket.all[1]!.drop(4401)
    await flush()
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(live.state.value).toBe('unauthorized')
    scope.stop()

    const other = start()
    await flush()
    FakeSocket.all[2]!.drop(4403)
    await vi.advanceTimersByTimeAsync(5000)
    expect(other.live.state.value).toBe('forbidden')
    expect(FakeSocket.all).toHaveLength(3)
    other.scope.stop()
  })

  it('says the REST read failed only while nothing else arrived', async () => {
    const { live, scope } = start({ initialSummary: async () => Promise.reject(new Error('down')) })
    await flush()
    expect(live.error.value).toBeInstanceOf(Error)
    FakeSocket.all[0]!.send({ type: 'summary', summary: summary(0) })
    expect(live.error.value).toBeNull()
    scope.stop()
  })
})
