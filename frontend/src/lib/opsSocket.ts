/**
 * The framework-free parts of the operators' live socket (`WS /ws/operations`, see
 * composables/useOperationsSocket.ts): the frames it sends, reading them safely, and what a close
 * code means for the next step. Authentication and backoff are the job stream's (lib/jobStream.ts).
 */
import { CLOSE_UNAUTHENTICATED } from './jobStream'

/** The server refuses a researcher (the socket is for operators and admins). */
export const CLOSE_FORBIDDEN = 4403
/** The user already holds as many sockets as the server allows: waiting longer helps. */
export const CLOSE_TOO_MANY = 4429

export type OpsConnectionState = 'connecting' | 'live' | 'reconnecting' | 'unauthorized' | 'forbidden' | 'closed'

/** The frames, generic in the summary and node shapes (api/operations.ts names them). */
export type OpsMessage<S, N> = { type: 'summary'; summary: S } | { type: 'nodes'; nodes: N[] } | { type: 'heartbeat' }

/** `ws(s)://<host>/ws/operations` for a page at `location`. */
export function opsSocketUrl(location: { protocol: string; host: string }): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/operations`
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** One frame's text as a message we understand, or null (not JSON, another type, a wrong shape). */
export function parseOpsMessage<S, N>(text: unknown): OpsMessage<S, N> | null {
  if (typeof text !== 'string') return null
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (!isObject(value)) return null
  if (value.type === 'summary' && isObject(value.summary)) return { type: 'summary', summary: value.summary as S }
  if (value.type === 'nodes' && Array.isArray(value.nodes)) return { type: 'nodes', nodes: value.nodes as N[] }
  if (value.type === 'heartbeat') return { type: 'heartbeat' }
  return null
}

/** What to do after the socket closed with `code`: refresh the token, give up, or reconnect later. */
export function afterClose(code: number): 'refresh' | 'forbidden' | 'reconnect' {
  if (code === CLOSE_UNAUTHENTICATED) return 'refresh'
  if (code === CLOSE_FORBIDDEN) return 'forbidden'
  return 'reconnect'
}
