/**
 * The message tree as the chat page shows it: the server returns the current branch (root → head)
 * and, for each message, the ids of its siblings (same parent). Editing a user message and
 * resending, or regenerating an answer, adds a sibling; the "< 2/3 >" switcher walks them.
 */
import type { ChatMessage } from '@/api/chat'

export interface BranchPosition {
  /** 1-based place of the message among its siblings. */
  index: number
  total: number
  prevId: number | null
  nextId: number | null
}

/** Where a message stands among its siblings, or null when it has none (nothing to switch). */
export function branchPosition(message: Pick<ChatMessage, 'id' | 'siblings'>): BranchPosition | null {
  const ids = Array.isArray(message.siblings) ? message.siblings : []
  if (ids.length < 2) return null
  const at = ids.indexOf(message.id)
  if (at === -1) return null
  return {
    index: at + 1,
    total: ids.length,
    prevId: at > 0 ? ids[at - 1]! : null,
    nextId: at < ids.length - 1 ? ids[at + 1]! : null,
  }
}

/**
 * Only the latest message offers regenerate (an earlier one would cut the branch below it): an
 * answer, or a question whose answer failed and was never stored.
 */
export function canRegenerate(messages: readonly Pick<ChatMessage, 'role'>[], index: number): boolean {
  return index === messages.length - 1 && index >= 0
}

/**
 * What regenerate asks the server for: a stored answer → a sibling answer; an answer that exists
 * only on screen (it failed before being stored) → a new answer to its question. Null: nothing
 * stored to regenerate from.
 */
export function regenerateTarget(
  messages: readonly Pick<ChatMessage, 'id' | 'role'>[],
  index: number,
): { messageId: number; keep: number } | null {
  const message = messages[index]
  if (message === undefined) return null
  if (message.id > 0) return { messageId: message.id, keep: message.role === 'user' ? index + 1 : index }
  const question = messages[index - 1]
  if (message.role === 'assistant' && question?.role === 'user' && question.id > 0) {
    return { messageId: question.id, keep: index }
  }
  return null
}

/** The body of "edit and resend": the same parent as the edited message, so it becomes its sibling. */
export function editResendBody(
  message: Pick<ChatMessage, 'role' | 'parent_id'>,
  content: string,
): { content: string; parent_id: number | null } | null {
  if (message.role !== 'user') return null
  const text = content.trim()
  if (text === '') return null
  return { content: text, parent_id: message.parent_id }
}

/** The messages to keep on screen while an edited message is resent: everything above it. */
export function messagesBefore<T extends Pick<ChatMessage, 'id'>>(messages: readonly T[], messageId: number): T[] {
  const at = messages.findIndex((m) => m.id === messageId)
  return at === -1 ? messages.slice() : messages.slice(0, at)
}

/** A message as the page shows it: stored, or still streaming (`pending`, negative id). */
export type ViewMessage = ChatMessage & { pending?: boolean; error?: string | null }

let localIds = 0
/** A not-yet-stored message for the screen (its id is negative, so it never reaches the API). */
export function localMessage(role: ChatMessage['role'], content: string, parentId: number | null = null): ViewMessage {
  localIds -= 1
  return {
    id: localIds,
    conversation_id: 0,
    parent_id: parentId,
    role,
    content,
    reasoning_content: null,
    model: null,
    params: {},
    prompt_tokens: null,
    completion_tokens: null,
    latency_ms: null,
    ttft_ms: null,
    finish_reason: null,
    created_at: new Date().toISOString(),
    siblings: [],
    pending: true,
    error: null,
  }
}
