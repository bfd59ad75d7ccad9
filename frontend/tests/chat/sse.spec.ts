import { afterEach, describe, expect, it, vi } from 'vitest'

import { setAuthHooks } from '@/api/http'
import { isAbortError, SseParser, streamSse, type SseEvent } from '@/api/sse'

describe('SSE frame parser', () => {
  it('reads event and data fields, one event per blank line', () => {
    const parser = new SseParser()
    const events = parser.push('event: delta\ndata: {"content":"Hi"}\n\nevent: done\ndata: {}\n\n')
    expect(events).toEqual([
      { event: 'delta', data: '{"content":"Hi"}' },
      { event: 'done', data: '{}' },
    ])
  })

  it('joins a frame split across chunks anywhere, even inside a field name or a CRLF', () => {
    const text = 'event: delta\r\ndata: {"content":"split"}\r\n\r\nevent: done\r\ndata: {"id":1}\r\n\r\n'
    for (let cut = 1; cut < text.length; cut++) {
      const parser = new SseParser()
      const events = [...parser.push(text.slice(0, cut)), ...parser.push(text.slice(cut))]
      expect(events, `cut at ${cut}`).toEqual([
        { event: 'delta', data: '{"content":"split"}' },
        { event: 'done', data: '{"id":1}' },
      ])
    }
    // One character at a time.
    const parser = new SseParser()
    const events: SseEvent[] = []
    for (const ch of text) events.push(...parser.push(ch))
    expect(events.map((e) => e.event)).toEqual(['delta', 'done'])
  })

  it('joins multi-line data with newlines and strips only one leading space', () => {
    const parser = new SseParser()
    const events = parser.push('data: line one\ndata:line two\ndata:  indented\n\n')
    expect(events).toEqual([{ event: 'message', data: 'line one\nline two\n indented' }])
  })

  it('ignores comments, unknown fields and frames without data; keeps the id', () => {
    const parser = new SseParser()
    const events = parser.push(': keep-alive\n\nretry: 100\nevent: lonely\n\nid: 7\nevent: x\ndata\nfoo: bar\n\n')
    expect(events).toEqual([{ event: 'x', data: '', id: '7' }])
  })

  it('delivers a last frame the server closed without a blank line', () => {
    const parser = new SseParser()
    expect(parser.push('event: done\ndata: {"ok":true}')).toEqual([])
    expect(parser.end()).toEqual([{ event: 'done', data: '{"ok":true}' }])
    expect(parser.end()).toEqual([])
  })
})

function sseResponse(chunks: string[], hold = false): Response {
  const encoder = new TextEncoder()
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk))
      if (!hold) controller.close()
    },
  })
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
}

describe('streamSse', () => {
  afterEach(() => setAuthHooks({ getToken: () => null, refresh: async () => false, onAuthFailure: () => {} }))

  it('POSTs JSON with the Bearer token and hands over every event in order', async () => {
    setAuthHooks({ getToken: () => 'tok-1' })
    const seen: Request[] = []
    vi.stubGlobal(
      'fetch',
      vi.fn(async (request: Request) => {
        seen.push(request)
        return sseResponse([
          'event: message\ndata: {"id":1}\n',
          '\nevent: delta\ndata: {"content":"a"}\n\nevent: do',
          'ne\ndata: {}\n\n',
        ])
      }),
    )
    const events: SseEvent[] = []
    await streamSse({
      url: '/api/chat/conversations/1/messages',
      body: { content: 'hi' },
      onEvent: (e) => events.push(e),
    })
    expect(events.map((e) => e.event)).toEqual(['message', 'delta', 'done'])
    expect(seen[0]!.method).toBe('POST')
    expect(seen[0]!.headers.get('Authorization')).toBe('Bearer tok-1')
    expect(seen[0]!.headers.get('Content-Type')).toBe('application/json')
    expect(await seen[0]!.json()).toEqual({ content: 'hi' })
  })

  it('throws the API error of a non-2xx answer', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(
        async () =>
          new Response(JSON.stringify({ error: { code: 'model_not_found', message: 'no such model', details: [] } }), {
            status: 404,
            headers: { 'Content-Type': 'application/json' },
          }),
      ),
    )
    await expect(streamSse({ url: '/x', body: {}, onEvent: () => {} })).rejects.toMatchObject({
      status: 404,
      code: 'model_not_found',
    })
  })

  it('stops reading when aborted and rejects with an AbortError', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => sseResponse(['event: delta\ndata: {"content":"a"}\n\n'], true)),
    )
    const controller = new AbortController()
    const events: SseEvent[] = []
    const done = streamSse({
      url: '/x',
      body: {},
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e)
        controller.abort()
      },
    })
    const err = await done.catch((e: unknown) => e)
    expect(isAbortError(err)).toBe(true)
    expect(events).toHaveLength(1)
  })
})
