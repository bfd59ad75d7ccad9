/**
 * Dataset uploads, independent of HTTP and of Vue: the UI talks to an `UploadTask`, the task talks to an
 * `UploadTransport` (the real one is `datasetUploadTransport` in `src/api/datasets.ts`; the unit tests use a fake).
 *
 * Small files go in one multipart request. Larger ones use the server's resumable session:
 *   1. hash the file in the browser, slice by slice (constant memory, whatever the size);
 *   2. create a session with the total size and sha256;
 *   3. PUT each chunk at its offset (retried a few times: the server treats a resent chunk as
 *      idempotent);
 *   4. on resume (after pause, a dropped connection or a failed chunk) ask the server which
 *      byte ranges are still missing and send only those;
 *   5. complete; the server checks the hash and creates the dataset.
 */
import { asApiError, type ApiError } from '@/api/errors'

import { readSetting } from '../storage'
import { isTransient } from './errors'
import { planChunks, rangeBytes, splitRanges, type ByteRange } from './ranges'

export const MiB = 1024 * 1024
/** Files larger than this use the chunked session. */
export const DEFAULT_CHUNK_THRESHOLD = 8 * MiB
export const DEFAULT_CHUNK_SIZE = 8 * MiB
/** How much of the file is read at a time while hashing. */
export const HASH_SLICE = 4 * MiB
export const CHUNK_RETRIES = 3

/** Developer/test knobs (bytes), e.g. to push a small file through the chunked path. */
export const THRESHOLD_KEY = 'loraforge.upload.chunkThreshold'
export const CHUNK_SIZE_KEY = 'loraforge.upload.chunkSize'

function positiveInt(raw: string | null): number | null {
  if (raw === null) return null
  const value = Number(raw)
  return Number.isInteger(value) && value > 0 ? value : null
}

/**
 * The threshold in force (the localStorage knob, else the default) and a chunk size only when
 * the knob sets one: otherwise the server's suggestion is used.
 */
export function uploadLimits(): { threshold: number; chunkSize?: number } {
  const chunkSize = positiveInt(readSetting(CHUNK_SIZE_KEY))
  return {
    threshold: positiveInt(readSetting(THRESHOLD_KEY)) ?? DEFAULT_CHUNK_THRESHOLD,
    ...(chunkSize === null ? {} : { chunkSize }),
  }
}

// ---------------------------------------------------------------------------------------------

export interface UploadMeta {
  name: string
  description: string
  /** Format override; empty for auto-detection. */
  format: string
}

export interface TransferHooks {
  onProgress?: (loaded: number) => void
  signal: AbortSignal
}

export interface UploadTransport<D> {
  uploadSmall(file: Blob, filename: string, meta: UploadMeta, hooks: TransferHooks): Promise<D>
  createSession(
    input: { filename: string; size: number; sha256: string; meta: UploadMeta },
    signal: AbortSignal,
  ): Promise<{ id: string; chunkSize?: number | null; maxChunkSize?: number | null }>
  putChunk(sessionId: string, offset: number, data: Blob, hooks: TransferHooks): Promise<void>
  /** The byte ranges the server does not have yet. */
  missing(sessionId: string, signal: AbortSignal): Promise<ByteRange[]>
  complete(sessionId: string, signal: AbortSignal): Promise<D>
  /** Drop the session (best effort). */
  abort(sessionId: string): Promise<void>
}

export interface IncrementalHasher {
  update(bytes: Uint8Array): void
  /** Lower-case hex. */
  digest(): string
}

export type HasherFactory = () => Promise<IncrementalHasher>

export type UploadStatus = 'idle' | 'hashing' | 'uploading' | 'completing' | 'paused' | 'done' | 'error' | 'cancelled'

export interface UploadState<D> {
  filename: string
  size: number
  mode: 'single' | 'chunked'
  status: UploadStatus
  /** Bytes hashed so far (chunked mode). */
  hashed: number
  /** Bytes the server has (or, for a single request, bytes sent). */
  uploaded: number
  sha256: string | null
  sessionId: string | null
  error: ApiError | null
  result: D | null
}

export interface UploadOptions {
  threshold?: number
  /** Forced chunk size; without it the server's suggestion (else DEFAULT_CHUNK_SIZE) is used. */
  chunkSize?: number
  retries?: number
  /** Wait before retry `attempt` (1-based); tests pass () => 0. */
  backoffMs?: (attempt: number) => number
  /**
   * Makes the task's state observable: the uploads store passes Vue's `reactive`, so the UI
   * follows the progress. Without it the state is a plain object (what the unit tests read).
   */
  observe?: <S extends object>(state: S) => S
}

class Paused extends Error {}
class Cancelled extends Error {}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface UploadTask<D> {
  state: UploadState<D>
  /** Progress in percent, 0–100 (hashing counts for the first 10 % of a chunked upload). */
  percent(): number
  start(): Promise<void>
  pause(): void
  resume(): Promise<void>
  cancel(): Promise<void>
}

async function readSlice(file: Blob, start: number, end: number): Promise<Uint8Array> {
  return new Uint8Array(await file.slice(start, end).arrayBuffer())
}

export function createUploadTask<D>(
  file: File | (Blob & { name: string }),
  meta: UploadMeta,
  transport: UploadTransport<D>,
  hasherFactory: HasherFactory,
  options: UploadOptions = {},
): UploadTask<D> {
  const threshold = options.threshold ?? DEFAULT_CHUNK_THRESHOLD
  let chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE
  const retries = options.retries ?? CHUNK_RETRIES
  const backoff = options.backoffMs ?? ((attempt: number) => 500 * 2 ** (attempt - 1))

  const observe = options.observe ?? (<S extends object>(value: S) => value)
  const state = observe({
    filename: file.name,
    size: file.size,
    mode: file.size > threshold ? 'chunked' : 'single',
    status: 'idle',
    hashed: 0,
    uploaded: 0,
    sha256: null,
    sessionId: null,
    error: null,
    result: null,
  } as UploadState<D>)

  let controller = new AbortController()
  let hasher: IncrementalHasher | null = null
  let running: Promise<void> | null = null
  let pauseRequested = false
  let cancelRequested = false
  /** Bytes confirmed by the server (all chunks outside the missing ranges). */
  let confirmed = 0

  function checkpoint(): void {
    if (cancelRequested) throw new Cancelled()
    if (pauseRequested) throw new Paused()
  }

  async function hashFile(): Promise<void> {
    state.status = 'hashing'
    hasher ??= await hasherFactory()
    while (state.hashed < state.size) {
      checkpoint()
      const end = Math.min(state.hashed + HASH_SLICE, state.size)
      hasher.update(await readSlice(file, state.hashed, end))
      state.hashed = end
    }
    state.sha256 = hasher.digest()
  }

  async function sendChunk(range: ByteRange): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      checkpoint()
      try {
        await transport.putChunk(state.sessionId!, range.start, file.slice(range.start, range.end), {
          signal: controller.signal,
          onProgress: (loaded) => {
            state.uploaded = confirmed + Math.min(loaded, range.end - range.start)
          },
        })
        confirmed += range.end - range.start
        state.uploaded = confirmed
        return
      } catch (err) {
        checkpoint() // an abort caused by pause/cancel is not an error
        if (attempt >= retries || !isTransient(err)) throw err
        state.uploaded = confirmed
        await sleep(backoff(attempt + 1))
      }
    }
  }

  async function sendMissing(): Promise<void> {
    for (;;) {
      checkpoint()
      const missing = await transport.missing(state.sessionId!, controller.signal)
      confirmed = state.size - rangeBytes(missing)
      state.uploaded = confirmed
      if (missing.length === 0) return
      for (const range of splitRanges(missing, chunkSize)) await sendChunk(range)
    }
  }

  async function runChunked(): Promise<void> {
    if (state.sha256 === null) await hashFile()
    checkpoint()
    state.status = 'uploading'
    if (state.sessionId === null) {
      const session = await transport.createSession(
        { filename: file.name, size: state.size, sha256: state.sha256!, meta },
        controller.signal,
      )
      state.sessionId = session.id
      if (options.chunkSize === undefined && session.chunkSize && session.chunkSize > 0) chunkSize = session.chunkSize
      if (session.maxChunkSize && session.maxChunkSize > 0) chunkSize = Math.min(chunkSize, session.maxChunkSize)
      // A fresh session has nothing: send everything without asking first.
      confirmed = 0
      for (const range of planChunks(state.size, chunkSize)) await sendChunk(range)
    }
    // Either a resume or a check after the first pass: send whatever the server still lacks.
    await sendMissing()
    checkpoint()
    state.status = 'completing'
    state.result = await transport.complete(state.sessionId, controller.signal)
  }

  async function runSingle(): Promise<void> {
    state.status = 'uploading'
    state.uploaded = 0
    state.result = await transport.uploadSmall(file, file.name, meta, {
      signal: controller.signal,
      onProgress: (loaded) => {
        state.uploaded = Math.min(loaded, state.size)
      },
    })
    state.uploaded = state.size
  }

  function run(): Promise<void> {
    pauseRequested = false
    state.error = null
    controller = new AbortController()
    running = (async () => {
      try {
        if (state.mode === 'single') await runSingle()
        else await runChunked()
        state.status = 'done'
      } catch (err) {
        if (err instanceof Cancelled || cancelRequested) state.status = 'cancelled'
        else if (err instanceof Paused || pauseRequested) state.status = 'paused'
        else {
          state.error = asApiError(err)
          state.status = 'error'
        }
      } finally {
        running = null
      }
    })()
    return running
  }

  return {
    state,
    percent(): number {
      if (state.size === 0) return state.status === 'done' ? 100 : 0
      if (state.status === 'done') return 100
      if (state.mode === 'single') return Math.floor((state.uploaded / state.size) * 100)
      return Math.floor((state.hashed / state.size) * 10 + (state.uploaded / state.size) * 90)
    },
    start(): Promise<void> {
      if (state.status !== 'idle') return running ?? Promise.resolve()
      return run()
    },
    pause(): void {
      if (state.mode !== 'chunked' || !['hashing', 'uploading'].includes(state.status)) return
      pauseRequested = true
      controller.abort()
    },
    async resume(): Promise<void> {
      if (running) await running
      if (state.status !== 'paused' && state.status !== 'error') return
      // A single request cannot resume: start it again from the beginning.
      return run()
    },
    async cancel(): Promise<void> {
      if (['done', 'cancelled'].includes(state.status)) return
      cancelRequested = true
      controller.abort()
      if (running) await running
      state.status = 'cancelled'
      if (state.sessionId !== null) {
        try {
          await transport.abort(state.sessionId)
        } catch {
          // The server expires abandoned sessions on its own.
        }
      }
    },
  }
}
