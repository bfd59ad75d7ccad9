/**
 * Server-Sent Events over fetch: the browser's EventSource can only GET and cannot send an
 * Authorization header, while the chat endpoints are POSTs that need the Bearer token.
 *
 * `SseParser` is the frame parser of the HTML spec's event-stream format, fed with text chunks as
 * they arrive (a frame, a line or even a CRLF may be split across chunks). `streamSse` sends the
 * request through `authFetch` (the access token, one refresh-and-replay on 401), reads the body
 * stream and hands every event to a callback; aborting its signal cancels the read, which closes
 * the connection, which is how the server learns to stop generating.
 */
import { fetchOk } from './http'

export interface SseEvent {
  /** The `event:` field, "message" when the frame had none (as EventSource does). */
  event: string
  /** The `data:` lines joined with "\n". */
  data: string
  /** The `id:` field, when the frame had one. */
  id?: string
}

export class SseParser {
  private buffer = ''
  private eventType = ''
  private dataLines: string[] = []
  private lastId: string | undefined = undefined
  private sawData = false

  /** Feed a chunk of text; returns the events it completed, in order. */
  push(chunk: string): SseEvent[] {
    this.buffer += chunk
    const events: SseEvent[] = []
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer)
      if (match === null) break
      // A lone "\r" at the very end may be the first half of "\r\n": wait for the next chunk.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break
      const line = this.buffer.slice(0, match.index)
      this.buffer = this.buffer.slice(match.index + match[0].length)
      const event = this.line(line)
      if (event !== null) events.push(event)
    }
    return events
  }

  /**
   * The stream ended: a last frame without its closing blank line is still delivered (the spec
   * drops it, but a server that closes right after its final `done` frame should not lose it).
   */
  end(): SseEvent[] {
    const events: SseEvent[] = []
    if (this.buffer.length > 0) {
      const tail = this.buffer.replace(/\r$/, '')
      this.buffer = ''
      const event = this.line(tail)
      if (event !== null) events.push(event)
    }
    const last = this.dispatch()
    if (last !== null) events.push(last)
    return events
  }

  private line(line: string): SseEvent | null {
    if (line === '') return this.dispatch()
    if (line.startsWith(':')) return null // a comment (keep-alive)
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'event':
        this.eventType = value
        break
      case 'data':
        this.dataLines.push(value)
        this.sawData = true
        break
      case 'id':
        if (!value.includes('\0')) this.lastId = value
        break
      default:
        break // `retry` and unknown fields mean nothing to a fetch reader
    }
    return null
  }

  private dispatch(): SseEvent | null {
    const hadData = this.sawData
    const event: SseEvent = { event: this.eventType || 'message', data: this.dataLines.join('\n') }
    if (this.lastId !== undefined) event.id = this.lastId
    this.eventType = ''
    this.dataLines = []
    this.sawData = false
    // A frame with no data line dispatches nothing (spec), e.g. a lone `event:` then a blank line.
    return hadData ? event : null
  }
}

/** JSON of an event's data, or null when it is not JSON. */
export function eventJson<T = unknown>(event: SseEvent): T | null {
  try {
    return JSON.parse(event.data) as T
  } catch {
    return null
  }
}

export function isAbortError(err: unknown): boolean {
  return err instanceof DOMException ? err.name === 'AbortError' : (err as { name?: unknown })?.name === 'AbortError'
}

export interface SseRequest {
  url: string
  method?: 'GET' | 'POST'
  /** Sent as JSON. */
  body?: unknown
  signal?: AbortSignal
  onEvent: (event: SseEvent) => void
}

/**
 * Send the request and deliver its events until the stream ends. A non-2xx answer throws the
 * ApiError of its body (nothing was streamed); an abort rejects with an AbortError (see
 * `isAbortError`) after the connection is closed.
 */
export async function streamSse(request: SseRequest): Promise<void> {
  const headers = new Headers({ Accept: 'text/event-stream' })
  if (request.body !== undefined) headers.set('Content-Type', 'application/json')
  const response = await fetchOk(request.url, {
    method: request.method ?? 'POST',
    headers,
    body: request.body === undefined ? undefined : JSON.stringify(request.body),
    signal: request.signal,
  })
  if (response.body === null) return
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  const parser = new SseParser()
  const onAbort = () => void reader.cancel().catch(() => {})
  request.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    for (;;) {
      if (request.signal?.aborted) throw new DOMException('aborted', 'AbortError')
      const { done, value } = await reader.read()
      if (done) break
      for (const event of parser.push(decoder.decode(value, { stream: true }))) request.onEvent(event)
    }
    if (request.signal?.aborted) throw new DOMException('aborted', 'AbortError')
    for (const event of parser.push(decoder.decode())) request.onEvent(event)
    for (const event of parser.end()) request.onEvent(event)
  } finally {
    request.signal?.removeEventListener('abort', onAbort)
    reader.releaseLock()
  }
}
