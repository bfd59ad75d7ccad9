import { createHash } from 'node:crypto'

import { describe, expect, it } from 'vitest'

import { ApiError } from '@/api/errors'
import { isTransient, uploadErrorKey } from '@/lib/upload/errors'
import { normalizeRanges, planChunks, splitRanges, type ByteRange } from '@/lib/upload/ranges'
import { sha256Hasher } from '@/lib/upload/sha256'
import {
  CHUNK_SIZE_KEY,
  createUploadTask,
  DEFAULT_CHUNK_THRESHOLD,
  THRESHOLD_KEY,
  uploadLimits,
  type TransferHooks,
  type UploadMeta,
  type UploadTransport,
} from '@/lib/upload/task'

const meta: UploadMeta = { name: 'demo', description: '', format: '' }

function fileOf(size: number, name = 'data.jsonl'): File {
  const bytes = new Uint8Array(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) % 251
  return new File([bytes], name)
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

interface FakeDataset {
  name: string
  size: number
  sha256: string
}

/**
 * An in-memory stand-in for the server's upload sessions: it stores the bytes it receives,
 * reports the gaps, and checks size and hash on completion, like the real contract says.
 * `beforePut` lets a test fail or stall a chunk.
 */
class FakeTransport implements UploadTransport<FakeDataset> {
  sessions = new Map<string, { size: number; sha256: string; bytes: Uint8Array; have: boolean[]; meta: UploadMeta }>()
  puts: ByteRange[] = []
  missingCalls = 0
  completed = 0
  aborted: string[] = []
  smallUploads = 0
  beforePut: (offset: number, length: number, hooks: TransferHooks) => Promise<void> | void = () => {}
  serverChunkSize: number | null = null
  serverMaxChunk: number | null = null

  async uploadSmall(file: Blob, filename: string, m: UploadMeta, hooks: TransferHooks): Promise<FakeDataset> {
    this.smallUploads++
    hooks.onProgress?.(file.size / 2)
    hooks.onProgress?.(file.size)
    return { name: m.name || filename, size: file.size, sha256: sha256Hex(new Uint8Array(await file.arrayBuffer())) }
  }

  async createSession(input: { filename: string; size: number; sha256: string; meta: UploadMeta }) {
    const id = `s${this.sessions.size + 1}`
    this.sessions.set(id, {
      size: input.size,
      sha256: input.sha256,
      bytes: new Uint8Array(input.size),
      have: new Array<boolean>(input.size).fill(false),
      meta: input.meta,
    })
    return { id, chunkSize: this.serverChunkSize, maxChunkSize: this.serverMaxChunk }
  }

  async putChunk(id: string, offset: number, data: Blob, hooks: TransferHooks): Promise<void> {
    const session = this.sessions.get(id)
    if (!session) throw new ApiError(404, 'upload_not_found', 'no such upload')
    await this.beforePut(offset, data.size, hooks)
    if (hooks.signal.aborted) throw new DOMException('aborted', 'AbortError')
    if (offset + data.size > session.size) throw new ApiError(416, 'range_beyond_size', 'beyond size')
    const bytes = new Uint8Array(await data.arrayBuffer())
    session.bytes.set(bytes, offset)
    for (let i = offset; i < offset + bytes.length; i++) session.have[i] = true
    this.puts.push({ start: offset, end: offset + bytes.length })
    hooks.onProgress?.(bytes.length)
  }

  async missing(id: string): Promise<ByteRange[]> {
    this.missingCalls++
    const session = this.sessions.get(id)!
    const raw: [number, number][] = []
    let start = -1
    for (let i = 0; i <= session.size; i++) {
      const gap = i < session.size && !session.have[i]
      if (gap && start < 0) start = i
      if (!gap && start >= 0) {
        raw.push([start, i])
        start = -1
      }
    }
    // The real server may answer either shape; the client normalizes.
    return normalizeRanges(raw, session.size)
  }

  async complete(id: string): Promise<FakeDataset> {
    const session = this.sessions.get(id)!
    if (session.have.includes(false)) throw new ApiError(409, 'upload_incomplete', 'missing bytes')
    const actual = sha256Hex(session.bytes)
    if (actual !== session.sha256) throw new ApiError(400, 'hash_mismatch', 'sha256 does not match')
    this.completed++
    return { name: session.meta.name, size: session.size, sha256: actual }
  }

  async abort(id: string): Promise<void> {
    this.aborted.push(id)
    this.sessions.delete(id)
  }
}

const noWait = { backoffMs: () => 0 }

describe('chunk planning', () => {
  it('cuts a file into consecutive chunks, the last one short', () => {
    expect(planChunks(10, 4)).toEqual([
      { start: 0, end: 4 },
      { start: 4, end: 8 },
      { start: 8, end: 10 },
    ])
    expect(planChunks(8, 4)).toHaveLength(2)
    expect(planChunks(0, 4)).toEqual([])
  })

  it('splits missing ranges into chunks no larger than the chunk size', () => {
    expect(
      splitRanges(
        [
          { start: 3, end: 5 },
          { start: 10, end: 19 },
        ],
        4,
      ),
    ).toEqual([
      { start: 3, end: 5 },
      { start: 10, end: 14 },
      { start: 14, end: 18 },
      { start: 18, end: 19 },
    ])
    expect(() => splitRanges([{ start: 0, end: 1 }], 0)).toThrow(RangeError)
  })

  it('normalizes the server answer: pairs or objects, clamped, sorted, merged', () => {
    expect(
      normalizeRanges(
        [
          [8, 12],
          [0, 2],
          [2, 4],
        ],
        10,
      ),
    ).toEqual([
      { start: 0, end: 4 },
      { start: 8, end: 10 },
    ])
    expect(normalizeRanges([{ start: 1, end: 3 }, { offset: 5, length: 2 }, { start: 'x' }, null], 10)).toEqual([
      { start: 1, end: 3 },
      { start: 5, end: 7 },
    ])
    expect(normalizeRanges({ not: 'a list' }, 10)).toEqual([])
  })
})

describe('error mapping', () => {
  it('maps statuses and codes to the messages the UI shows', () => {
    expect(uploadErrorKey(new TypeError('Failed to fetch'))).toBe('datasets.upload.errors.network')
    expect(uploadErrorKey(new ApiError(413, 'payload_too_large', 'too big'))).toBe('datasets.upload.errors.tooLarge')
    expect(uploadErrorKey(new ApiError(507, 'insufficient_storage', 'full'))).toBe('datasets.upload.errors.diskFull')
    expect(uploadErrorKey(new ApiError(400, 'hash_mismatch', 'bad'))).toBe('datasets.upload.errors.hashMismatch')
    expect(uploadErrorKey(new ApiError(404, 'upload_not_found', 'gone'))).toBe('datasets.upload.errors.sessionGone')
    expect(uploadErrorKey(new ApiError(422, 'invalid_dataset', 'row 3 is bad'))).toBeNull()
  })

  it('retries only transient failures', () => {
    expect(isTransient(new ApiError(0, 'network_error', 'x'))).toBe(true)
    expect(isTransient(new ApiError(503, 'unavailable', 'x'))).toBe(true)
    expect(isTransient(new ApiError(507, 'disk_full', 'x'))).toBe(false)
    expect(isTransient(new ApiError(400, 'bad_chunk', 'x'))).toBe(false)
  })
})

describe('upload task', () => {
  it('sends a small file in one request', async () => {
    const transport = new FakeTransport()
    const task = createUploadTask(fileOf(100), meta, transport, sha256Hasher, { threshold: 1000 })
    expect(task.state.mode).toBe('single')
    await task.start()
    expect(task.state.status).toBe('done')
    expect(task.percent()).toBe(100)
    expect(transport.smallUploads).toBe(1)
    expect(transport.sessions.size).toBe(0)
  })

  it('hashes incrementally and sends a large file chunk by chunk', async () => {
    const file = fileOf(10_000)
    const transport = new FakeTransport()
    const task = createUploadTask(file, meta, transport, sha256Hasher, { threshold: 1000, chunkSize: 3000 })
    expect(task.state.mode).toBe('chunked')
    await task.start()
    expect(task.state.status, task.state.error?.message).toBe('done')
    expect(task.state.sha256).toBe(sha256Hex(new Uint8Array(await file.arrayBuffer())))
    expect(transport.puts.map((r) => r.start)).toEqual([0, 3000, 6000, 9000])
    expect(transport.completed).toBe(1)
    expect(task.state.result?.size).toBe(10_000)
  })

  it("uses the server's suggested chunk size unless one is forced, never above its maximum", async () => {
    const suggested = new FakeTransport()
    suggested.serverChunkSize = 4000
    await createUploadTask(fileOf(10_000), meta, suggested, sha256Hasher, { threshold: 1000 }).start()
    expect(suggested.puts.map((r) => r.end - r.start)).toEqual([4000, 4000, 2000])

    const forced = new FakeTransport()
    forced.serverChunkSize = 4000
    await createUploadTask(fileOf(10_000), meta, forced, sha256Hasher, { threshold: 1000, chunkSize: 5000 }).start()
    expect(forced.puts.map((r) => r.end - r.start)).toEqual([5000, 5000])

    const capped = new FakeTransport()
    capped.serverMaxChunk = 2500
    await createUploadTask(fileOf(10_000), meta, capped, sha256Hasher, { threshold: 1000, chunkSize: 5000 }).start()
    expect(capped.puts.map((r) => r.end - r.start)).toEqual([2500, 2500, 2500, 2500])
  })

  it('reads the knobs from localStorage', () => {
    expect(uploadLimits()).toEqual({ threshold: DEFAULT_CHUNK_THRESHOLD })
    localStorage.setItem(THRESHOLD_KEY, '65536')
    localStorage.setItem(CHUNK_SIZE_KEY, '1024')
    expect(uploadLimits()).toEqual({ threshold: 65536, chunkSize: 1024 })
    localStorage.setItem(CHUNK_SIZE_KEY, 'nonsense')
    expect(uploadLimits()).toEqual({ threshold: 65536 })
    localStorage.clear()
  })

  it('pauses, then resumes by sending only the ranges the server is missing', async () => {
    const transport = new FakeTransport()
    const task = createUploadTask(fileOf(5000), meta, transport, sha256Hasher, {
      threshold: 1000,
      chunkSize: 1000,
      ...noWait,
    })
    // Pause while the third chunk is on the wire: that request is aborted.
    transport.beforePut = (offset) => {
      if (offset === 2000) task.pause()
    }
    await task.start()
    expect(task.state.status).toBe('paused')
    expect(transport.puts.map((r) => r.start)).toEqual([0, 1000])
    expect(task.state.uploaded).toBe(2000)

    transport.beforePut = () => {}
    transport.puts = []
    await task.resume()
    expect(task.state.status, task.state.error?.message).toBe('done')
    expect(transport.missingCalls).toBeGreaterThan(0)
    expect(transport.puts.map((r) => r.start)).toEqual([2000, 3000, 4000])
    expect(transport.completed).toBe(1)
  })

  it('retries a chunk after a transient failure, then reports a persistent one', async () => {
    const transport = new FakeTransport()
    let failures = 1
    transport.beforePut = (offset) => {
      if (offset === 1000 && failures-- > 0) throw new ApiError(0, 'network_error', 'connection reset')
    }
    const task = createUploadTask(fileOf(3000), meta, transport, sha256Hasher, {
      threshold: 100,
      chunkSize: 1000,
      ...noWait,
    })
    await task.start()
    expect(task.state.status).toBe('done')

    const broken = new FakeTransport()
    broken.beforePut = (offset) => {
      if (offset === 1000) throw new ApiError(0, 'network_error', 'connection reset')
    }
    const failing = createUploadTask(fileOf(3000), meta, broken, sha256Hasher, {
      threshold: 100,
      chunkSize: 1000,
      retries: 2,
      ...noWait,
    })
    await failing.start()
    expect(failing.state.status).toBe('error')
    expect(uploadErrorKey(failing.state.error)).toBe('datasets.upload.errors.network')
    expect(broken.puts.map((r) => r.start)).toEqual([0])

    // The connection is back: resume asks for the gaps and finishes.
    broken.beforePut = () => {}
    await failing.resume()
    expect(failing.state.status).toBe('done')
    expect(broken.puts.map((r) => r.start)).toEqual([0, 1000, 2000])
  })

  it('does not retry a refused chunk', async () => {
    const transport = new FakeTransport()
    let calls = 0
    transport.beforePut = () => {
      calls++
      throw new ApiError(507, 'disk_full', 'no space left')
    }
    const task = createUploadTask(fileOf(3000), meta, transport, sha256Hasher, {
      threshold: 100,
      chunkSize: 1000,
      ...noWait,
    })
    await task.start()
    expect(task.state.status).toBe('error')
    expect(calls).toBe(1)
    expect(uploadErrorKey(task.state.error)).toBe('datasets.upload.errors.diskFull')
  })

  it('surfaces a hash mismatch on completion', async () => {
    const transport = new FakeTransport()
    const lying = async () => ({ update: () => {}, digest: () => '0'.repeat(64) })
    const task = createUploadTask(fileOf(3000), meta, transport, lying, { threshold: 100, chunkSize: 1000 })
    await task.start()
    expect(task.state.status).toBe('error')
    expect(uploadErrorKey(task.state.error)).toBe('datasets.upload.errors.hashMismatch')
  })

  it('cancels: stops sending and drops the session', async () => {
    const transport = new FakeTransport()
    let cancelling: Promise<void> | null = null
    const task = createUploadTask(fileOf(4000), meta, transport, sha256Hasher, { threshold: 100, chunkSize: 1000 })
    transport.beforePut = (offset) => {
      if (offset === 1000) cancelling = task.cancel()
    }
    await task.start()
    await cancelling
    expect(task.state.status).toBe('cancelled')
    expect(transport.aborted).toEqual(['s1'])
    expect(transport.completed).toBe(0)
    expect(transport.puts.map((r) => r.start)).toEqual([0])
  })

  it('can pause while hashing and resume where hashing stopped', async () => {
    const transport = new FakeTransport()
    const file = fileOf(9 * 1024 * 1024)
    let updates = 0
    const counting = async () => {
      const inner = await sha256Hasher()
      return {
        update: (bytes: Uint8Array) => {
          updates++
          inner.update(bytes)
          if (updates === 1) task.pause()
        },
        digest: () => inner.digest(),
      }
    }
    const task = createUploadTask(file, meta, transport, counting, { threshold: 100, chunkSize: 4 * 1024 * 1024 })
    await task.start()
    expect(task.state.status).toBe('paused')
    expect(task.state.hashed).toBe(4 * 1024 * 1024)
    expect(transport.sessions.size).toBe(0)
    await task.resume()
    expect(task.state.status).toBe('done')
    expect(updates).toBe(3) // 4 MiB + 4 MiB + 1 MiB, nothing hashed twice
    expect(task.state.sha256).toBe(sha256Hex(new Uint8Array(await file.arrayBuffer())))
  })
})
