import { afterEach, describe, expect, it, vi } from 'vitest'

import { createLogFollower, type LogChunk } from '@/lib/jobStream'

function deferred<T>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('createLogFollower', () => {
  it('reads the tail, then follows from next_offset, several pages at once when a lot arrived', async () => {
    const from = vi.fn(async (_id: number, offset: number): Promise<LogChunk> => {
      if (offset < 30) return { lines: [`@${offset}`], next_offset: offset + 10 }
      return { lines: [], next_offset: offset }
    })
    const got: string[] = []
    const log = createLogFollower(
      { tail: async () => ({ lines: ['a', 'b'], next_offset: 10 }), from },
      (lines) => got.push(...lines),
      1000,
    )
    await log.read(7)
    expect(got).toEqual(['a', 'b'])
    expect(from).not.toHaveBeenCalled()
    await log.read(7)
    expect(got).toEqual(['a', 'b', '@10', '@20'])
    expect(from.mock.calls.map((c) => c.slice(0, 2))).toEqual([
      [7, 10],
      [7, 20],
      [7, 30],
    ])
  })

  it('ignores a read still in flight after a reset, and starts from the tail again', async () => {
    const slow = deferred<LogChunk>()
    const tail = vi
      .fn()
      .mockReturnValueOnce(slow.promise)
      .mockResolvedValue({ lines: ['new job'], next_offset: 5 })
    const got: string[] = []
    const log = createLogFollower({ tail, from: vi.fn() }, (lines) => got.push(...lines), 1000)
    const old = log.read(1)
    log.reset()
    await log.read(2)
    slow.resolve({ lines: ['old job'], next_offset: 99 })
    await old
    expect(got).toEqual(['new job'])
    expect(tail.mock.calls.map((c) => c[0])).toEqual([1, 2])
  })

  it('reads again every pollMs while it should keep going, and not after a pause', async () => {
    vi.useFakeTimers()
    const from = vi.fn(async (_id: number, offset: number) => ({ lines: ['x'], next_offset: offset }))
    const log = createLogFollower({ tail: async () => ({ lines: [], next_offset: 0 }), from }, () => {}, 1000)
    await log.read(3)
    let keepGoing = true
    log.schedule(
      () => 3,
      () => keepGoing,
    )
    await vi.advanceTimersByTimeAsync(1000)
    await vi.advanceTimersByTimeAsync(1000)
    expect(from).toHaveBeenCalledTimes(2)
    keepGoing = false
    await vi.advanceTimersByTimeAsync(1000)
    expect(from).toHaveBeenCalledTimes(3) // the read already scheduled runs; no new one after it
    await vi.advanceTimersByTimeAsync(5000)
    expect(from).toHaveBeenCalledTimes(3)

    log.schedule(
      () => 3,
      () => true,
    )
    log.pause()
    await vi.advanceTimersByTimeAsync(5000)
    expect(from).toHaveBeenCalledTimes(3)
  })
})
