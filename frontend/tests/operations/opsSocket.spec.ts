import { describe, expect, it } from 'vitest'

import { CLOSE_UNAUTHENTICATED } from '@/lib/jobStream'
import { CLOSE_FORBIDDEN, afterClose, opsSocketUrl, parseOpsMessage } from '@/lib/opsSocket'

describe('operations socket protocol', () => {
  it('builds the socket URL from the page origin', () => {
    expect(opsSocketUrl({ protocol: 'http:', host: '127.0.0.1:8000' })).toBe('ws://127.0.0.1:8000/ws/operations')
    expect(opsSocketUrl({ protocol: 'https:', host: 'forge.example' })).toBe('wss://forge.example/ws/operations')
  })

  it('reads the frames it knows and drops anything else', () => {
    expect(parseOpsMessage('{"type":"summary","summary":{"alerts":{"open":1}}}')).toEqual({
      type: 'summary',
      summary: { alerts: { open: 1 } },
    })
    expect(parseOpsMessage('{"type":"nodes","nodes":[{"id":1}]}')).toEqual({ type: 'nodes', nodes: [{ id: 1 }] })
    expect(parseOpsMessage('{"type":"heartbeat"}')).toEqual({ type: 'heartbeat' })
    for (const junk of ['not json', '[]', 'null', '{"type":"nodes","nodes":{}}', '{"type":"summary"}', '{"type":"x"}'])
      expect(parseOpsMessage(junk)).toBeNull()
    expect(parseOpsMessage(new ArrayBuffer(2))).toBeNull()
  })

  it('refreshes on 4401, stops on 4403, reconnects otherwise', () => {
    expect(afterClose(CLOSE_UNAUTHENTICATED)).toBe('refresh')
    expect(afterClose(CLOSE_FORBIDDEN)).toBe('forbidden')
    expect(afterClose(1006)).toBe('reconnect')
    expect(afterClose(1011)).toBe('reconnect')
    expect(afterClose(4429)).toBe('reconnect')
  })
})
