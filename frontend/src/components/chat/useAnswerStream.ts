/**
 * Streaming one answer into the chat page's message list: a placeholder assistant message is
 * appended and filled as the server's events arrive (SSE), the user's own placeholder is replaced
 * by the stored message, and the answer by the stored answer when it is done. Deltas arrive token
 * by token; re-rendering Markdown for each is wasteful, so they are gathered and applied at most
 * every 50 ms. Stopping aborts the request: the server keeps what was generated so far.
 */
import { reactive, ref, type Ref } from 'vue'

import type { ChatStreamEvent } from '@/api/chat'
import { isAbortError } from '@/api/sse'

import { localMessage, type ViewMessage } from './branches'

export type StartStream = (onEvent: (e: ChatStreamEvent) => void, signal: AbortSignal) => Promise<void>

const FLUSH_MS = 50

export interface AnswerStreamOptions {
  messages: Ref<ViewMessage[]>
  /** The model the answer comes from (shown on the placeholder). */
  model: Ref<string>
  errorText: (err: unknown) => string
  /** Whether the view is scrolled to (near) the end, and scrolling there: new text follows the reader. */
  nearBottom: () => boolean
  scrollToEnd: () => Promise<void>
}

export function useAnswerStream({ messages, model, errorText, nearBottom, scrollToEnd }: AnswerStreamOptions) {
  const streaming = ref(false)
  let controller: AbortController | null = null
  const pendingDelta = reactive({ content: '', reasoning: '' })
  let deltaTimer: ReturnType<typeof setTimeout> | null = null

  function flushDelta(target: ViewMessage): void {
    if (deltaTimer !== null) clearTimeout(deltaTimer)
    deltaTimer = null
    if (pendingDelta.content === '' && pendingDelta.reasoning === '') return
    const follow = nearBottom()
    target.content += pendingDelta.content
    if (pendingDelta.reasoning) target.reasoning_content = (target.reasoning_content ?? '') + pendingDelta.reasoning
    pendingDelta.content = ''
    pendingDelta.reasoning = ''
    if (follow) void scrollToEnd()
  }

  /** Feed one stream's events into the two placeholder messages (user may be null: regenerate). */
  function handler(user: ViewMessage | null, answer: ViewMessage): (e: ChatStreamEvent) => void {
    return (event) => {
      const userAt = user === null ? -1 : messages.value.indexOf(user)
      const answerAt = () => messages.value.indexOf(answer)
      switch (event.type) {
        case 'message':
          if (userAt !== -1) messages.value[userAt] = { ...event.message }
          break
        case 'delta':
          pendingDelta.content += event.content
          pendingDelta.reasoning += event.reasoning
          deltaTimer ??= setTimeout(() => flushDelta(answer), FLUSH_MS)
          break
        case 'done': {
          flushDelta(answer)
          const at = answerAt()
          if (at !== -1) messages.value[at] = { ...event.message }
          break
        }
        case 'error':
          flushDelta(answer)
          answer.error = event.message
          answer.pending = false
          break
      }
    }
  }

  /**
   * Stream an answer after `user` (null: regenerate the last answer). Resolves true when the
   * answer completed and is stored, false when it was stopped or failed (its error stays on screen).
   */
  async function run(start: StartStream, user: ViewMessage | null): Promise<boolean> {
    const answer = reactive(localMessage('assistant', '', user?.id ?? null)) as ViewMessage
    answer.model = model.value
    messages.value.push(answer)
    const live = messages.value[messages.value.length - 1]!
    streaming.value = true
    controller = new AbortController()
    await scrollToEnd()
    let failed = false
    try {
      await start(handler(user === null ? null : messages.value[messages.value.length - 2]!, live), controller.signal)
    } catch (err) {
      flushDelta(live)
      if (isAbortError(err)) {
        // The server stores what was generated so far; show it as stopped.
        live.pending = false
        live.finish_reason = 'cancelled'
      } else {
        failed = true
        live.pending = false
        live.error = errorText(err)
      }
    } finally {
      flushDelta(live)
      streaming.value = false
      controller = null
    }
    return !failed && !live.error && live.finish_reason !== 'cancelled'
  }

  function stop(): void {
    controller?.abort()
  }

  return { streaming, run, stop }
}
