import { describe, expect, it } from 'vitest'

import type { PlaygroundStreamEvent } from '@/api/chat'
import { decodeChatEvent, decodePlaygroundEvent } from '@/api/chat'
import {
  branchPosition,
  canRegenerate,
  editResendBody,
  localMessage,
  messagesBefore,
  regenerateTarget,
} from '@/components/chat/branches'
import { mayDiscardDraft } from '@/components/chat/draft'
import { formatMs, fromParams, statsLine, templateVariables, toParams, emptyParams } from '@/components/chat/params'
import { applyPlaygroundEvent, columnsOf, newColumn } from '@/components/chat/playground'

describe('branch switcher', () => {
  it('places a message among its siblings with the neighbours to switch to', () => {
    expect(branchPosition({ id: 7, siblings: [3, 7, 9] })).toEqual({ index: 2, total: 3, prevId: 3, nextId: 9 })
    expect(branchPosition({ id: 3, siblings: [3, 7, 9] })).toEqual({ index: 1, total: 3, prevId: null, nextId: 7 })
    expect(branchPosition({ id: 9, siblings: [3, 7, 9] })).toEqual({ index: 3, total: 3, prevId: 7, nextId: null })
  })

  it('shows no switcher for a message without siblings (or an inconsistent list)', () => {
    expect(branchPosition({ id: 7, siblings: [7] })).toBeNull()
    expect(branchPosition({ id: 7, siblings: [] })).toBeNull()
    expect(branchPosition({ id: 7, siblings: [1, 2] })).toBeNull()
  })

  it('offers regenerate on the latest message only', () => {
    const messages = [
      { role: 'user' as const },
      { role: 'assistant' as const },
      { role: 'user' as const },
      { role: 'assistant' as const },
    ]
    expect(canRegenerate(messages, 3)).toBe(true)
    expect(canRegenerate(messages, 1)).toBe(false)
    expect(canRegenerate(messages, 2)).toBe(false)
    expect(canRegenerate([], -1)).toBe(false)
  })

  it('regenerates a stored answer as a sibling, and a failed local answer from its question', () => {
    const stored = [
      { id: 1, role: 'user' as const },
      { id: 2, role: 'assistant' as const },
    ]
    expect(regenerateTarget(stored, 1)).toEqual({ messageId: 2, keep: 1 })
    // A question whose answer failed (after a reload: the question is the last message).
    expect(regenerateTarget(stored.slice(0, 1), 0)).toEqual({ messageId: 1, keep: 1 })
    // The failed answer only exists on screen (negative id): ask again for its question.
    expect(regenerateTarget([stored[0]!, { id: -5, role: 'assistant' as const }], 1)).toEqual({ messageId: 1, keep: 1 })
    expect(
      regenerateTarget(
        [
          { id: -4, role: 'user' as const },
          { id: -5, role: 'assistant' as const },
        ],
        1,
      ),
    ).toBeNull()
  })

  it('resends an edited user message under the same parent, so it becomes a sibling', () => {
    expect(editResendBody({ role: 'user', parent_id: 12 }, '  better question ')).toEqual({
      content: 'better question',
      parent_id: 12,
    })
    expect(editResendBody({ role: 'user', parent_id: null }, 'first')).toEqual({ content: 'first', parent_id: null })
    expect(editResendBody({ role: 'user', parent_id: 12 }, '   ')).toBeNull()
    expect(editResendBody({ role: 'assistant', parent_id: 12 }, 'x')).toBeNull()
    expect(messagesBefore([{ id: 1 }, { id: 2 }, { id: 3 }], 2)).toEqual([{ id: 1 }])
  })

  it('gives on-screen messages negative ids that never collide', () => {
    const a = localMessage('user', 'a')
    const b = localMessage('assistant', '')
    expect(a.id).toBeLessThan(0)
    expect(b.id).toBeLessThan(a.id)
    expect(a.pending).toBe(true)
  })
})

describe('draft-discard guard', () => {
  it('goes on without asking when the input is empty', async () => {
    let asked = 0
    const ask = async () => {
      asked++
      return false
    }
    expect(await mayDiscardDraft('', ask)).toBe(true)
    expect(await mayDiscardDraft('  \n ', ask)).toBe(true)
    expect(asked).toBe(0)
  })

  it('asks when there is a draft and follows the answer; a dismissed dialog keeps the draft', async () => {
    expect(await mayDiscardDraft('unsent', async () => true)).toBe(true)
    expect(await mayDiscardDraft('unsent', async () => false)).toBe(false)
    expect(await mayDiscardDraft('unsent', () => Promise.reject(new Error('cancel')))).toBe(false)
  })
})

describe('parameters', () => {
  it('sends only what was set, stop sequences one per line', () => {
    const form = { ...emptyParams(), temperature: 0.7, max_tokens: 64, stop: 'END\n\n###\r' }
    expect(toParams(form)).toEqual({ temperature: 0.7, max_tokens: 64, stop: ['END', '###'] })
    expect(toParams(emptyParams())).toEqual({})
    expect(fromParams({ temperature: 0.2, stop: ['a', 'b'], seed: null })).toEqual({
      ...emptyParams(),
      temperature: 0.2,
      stop: 'a\nb',
    })
    expect(fromParams({ stop: 'END' }).stop).toBe('END')
  })

  it('finds template variables and formats stats', () => {
    expect(templateVariables('You are {{ role }} for {{team}}; {{role}} again')).toEqual(['role', 'team'])
    const labels = { tokens: 'tokens', latency: 'latency', ttft: 'first token' }
    expect(statsLine({ prompt_tokens: 12, completion_tokens: 30, latency_ms: 1534, ttft_ms: 80.4 }, labels)).toBe(
      'tokens 12→30 · latency 1.53 s · first token 80 ms',
    )
    expect(statsLine({}, labels)).toBe('')
    expect(formatMs(999.6)).toBe('1000 ms')
  })
})

describe('stream events', () => {
  it('decodes chat frames, including the error shape', () => {
    expect(decodeChatEvent({ event: 'delta', data: '{"content":"a","reasoning_content":"r"}' })).toEqual({
      type: 'delta',
      content: 'a',
      reasoning: 'r',
    })
    expect(decodeChatEvent({ event: 'error', data: '{"error":{"code":"upstream_error","message":"boom"}}' })).toEqual({
      type: 'error',
      code: 'upstream_error',
      message: 'boom',
    })
    expect(decodeChatEvent({ event: 'delta', data: 'not json' })).toBeNull()
    expect(decodeChatEvent({ event: 'ping', data: '{}' })).toBeNull()
  })

  it('merges a playground stream into its columns by index', () => {
    const columns = [newColumn('demo-tiny'), newColumn('ft:demo-tiny:lf:3')]
    const frames = [
      { event: 'delta', data: '{"index":1,"content":"B1"}' },
      { event: 'delta', data: '{"index":0,"content":"A1"}' },
      { event: 'delta', data: '{"index":1,"content":"B2","reasoning_content":"hmm"}' },
      {
        event: 'result',
        data: '{"index":0,"content":"A1","prompt_tokens":5,"completion_tokens":2,"latency_ms":40,"ttft_ms":10}',
      },
      { event: 'error', data: '{"index":1,"error":{"code":"upstream_error","message":"died"}}' },
      { event: 'done', data: '{"run_id":42}' },
    ]
    const outcomes = frames.map((f) => applyPlaygroundEvent(columns, decodePlaygroundEvent(f) as PlaygroundStreamEvent))
    expect(columns[0]).toMatchObject({
      content: 'A1',
      prompt_tokens: 5,
      completion_tokens: 2,
      latency_ms: 40,
      ttft_ms: 10,
      pending: false,
    })
    expect(columns[1]).toMatchObject({ content: 'B1B2', reasoning: 'hmm', error: 'died', pending: false })
    expect(outcomes.at(-1)).toEqual({ runId: 42 })
    // An error that names no column is the whole run's.
    const whole = decodePlaygroundEvent({ event: 'error', data: '{"error":{"code":"x","message":"all failed"}}' })
    expect(applyPlaygroundEvent(columns, whole!)).toEqual({ error: 'all failed' })
  })

  it('reopens a saved run as columns', () => {
    const cols = columnsOf({
      results: [
        {
          model: 'm1',
          content: 'hi',
          reasoning_content: null,
          prompt_tokens: 1,
          completion_tokens: 2,
          latency_ms: 3,
          ttft_ms: 4,
          error: null,
        },
        {
          model: 'm2',
          content: '',
          reasoning_content: null,
          prompt_tokens: null,
          completion_tokens: null,
          latency_ms: null,
          ttft_ms: null,
          error: { message: 'nope' },
        },
      ],
    })
    expect(cols.map((c) => [c.model, c.content, c.error, c.pending])).toEqual([
      ['m1', 'hi', null, false],
      ['m2', '', 'nope', false],
    ])
  })
})
