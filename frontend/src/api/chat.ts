/**
 * The chat API as the chat page and the playground use it: conversations with their
 * message tree, the streamed answers (SSE), export/import, the system prompt library, playground
 * runs, and the model list of the OpenAI-compatible `/v1/models`.
 *
 * The interfaces are written by hand after the server's shapes (api/schemas_chat.py); the calls go
 * through `authFetch` so the access token and the refresh-on-401 are the same as everywhere else.
 */
import { fetchText, requestJson, withQuery } from './http'
import { eventJson, streamSse, type SseEvent } from './sse'

/** Sampling parameters as OpenAI names them; absent = the server's / model's default. */
export interface ChatParams {
  temperature?: number | null
  top_p?: number | null
  max_tokens?: number | null
  stop?: string | string[] | null
  seed?: number | null
  presence_penalty?: number | null
  frequency_penalty?: number | null
}

export type ChatRole = 'system' | 'user' | 'assistant'

export interface ChatMessage {
  id: number
  conversation_id: number
  parent_id: number | null
  role: ChatRole
  content: string
  reasoning_content: string | null
  model: string | null
  params: ChatParams
  prompt_tokens: number | null
  completion_tokens: number | null
  latency_ms: number | null
  ttft_ms: number | null
  finish_reason: string | null
  created_at: string
  /** Ids of this message and its siblings (same parent), oldest first: the branches at this point. */
  siblings: number[]
}

export interface Conversation {
  id: number
  owner_id: number
  title: string
  model: string | null
  system_prompt: string
  params: ChatParams
  head_message_id: number | null
  created_at: string
  updated_at: string
  message_count?: number
}

/** GET /conversations/{id}: the conversation and the messages of its current branch, root first. */
export interface ConversationDetail extends Conversation {
  messages: ChatMessage[]
}

export interface ConversationPage {
  items: Conversation[]
  total: number
  page: number
  page_size: number
}

export interface ConversationInput {
  title?: string
  model?: string | null
  system_prompt?: string
  params?: ChatParams
  head_message_id?: number
}

export interface SendInput {
  content: string
  /** Default: the current head. An earlier message's parent = "edit and resend" (a new branch). */
  parent_id?: number | null
  model?: string | null
  params?: ChatParams
}

export interface PromptTemplate {
  id: number
  owner_id: number
  name: string
  content: string
  variables: string[]
  shared: boolean
  created_at: string
  updated_at: string
  /** Whether this user may change it (the owner). */
  editable: boolean
}

/** all = yours and the shared ones. */
export type PromptScope = 'all' | 'mine' | 'shared'

export interface PromptInput {
  name: string
  content: string
  shared: boolean
}

export interface PromptPage {
  items: PromptTemplate[]
  total: number
  page: number
  page_size: number
}

export interface PlaygroundResult {
  model: string
  content: string
  reasoning_content: string | null
  prompt_tokens: number | null
  completion_tokens: number | null
  latency_ms: number | null
  ttft_ms: number | null
  tokens_per_second?: number | null
  finish_reason?: string | null
  error: { code?: string; message?: string } | null
}

export interface PlaygroundRun {
  id: number
  owner_id: number
  prompt: string
  system_prompt: string
  params: ChatParams
  results: PlaygroundResult[]
  created_at: string
}

export interface PlaygroundPage {
  items: PlaygroundRun[]
  total: number
  page: number
  page_size: number
}

export interface PlaygroundInput {
  prompt: string
  system_prompt?: string
  models: string[]
  params?: ChatParams
}

/** One entry of `GET /v1/models`. */
export interface OpenAiModel {
  id: string
  object: string
  owned_by?: string
  created?: number
}

export type ExportFormat = 'json' | 'markdown'

// ----- streamed answers -----

/** What a chat stream tells the page, decoded from its SSE frames. */
export type ChatStreamEvent =
  | { type: 'message'; message: ChatMessage }
  | { type: 'delta'; content: string; reasoning: string }
  | { type: 'done'; message: ChatMessage }
  | { type: 'error'; code: string; message: string }

/** What a playground stream tells the page; every event but `done` names its column. */
export type PlaygroundStreamEvent =
  | { type: 'delta'; index: number; content: string; reasoning: string }
  | { type: 'result'; index: number; result: Partial<PlaygroundResult> }
  | { type: 'error'; index: number | null; code: string; message: string }
  | { type: 'done'; runId: number | null }

interface ErrorBody {
  error?: { code?: string; message?: string } | string
  code?: string
  message?: string
}

function errorOf(body: ErrorBody | null): { code: string; message: string } {
  const inner = body?.error
  if (inner && typeof inner === 'object') {
    return { code: inner.code ?? 'error', message: inner.message ?? inner.code ?? 'error' }
  }
  if (typeof inner === 'string') return { code: body?.code ?? 'error', message: inner }
  return { code: body?.code ?? 'error', message: body?.message ?? 'error' }
}

/** Decode one SSE frame of a conversation stream; unknown frames give null. */
export function decodeChatEvent(event: SseEvent): ChatStreamEvent | null {
  const data = eventJson<Record<string, unknown>>(event)
  if (data === null || typeof data !== 'object') return null
  switch (event.event) {
    case 'message':
      return { type: 'message', message: data as unknown as ChatMessage }
    case 'delta':
      return {
        type: 'delta',
        content: typeof data.content === 'string' ? data.content : '',
        reasoning: typeof data.reasoning_content === 'string' ? data.reasoning_content : '',
      }
    case 'done':
      return { type: 'done', message: data as unknown as ChatMessage }
    case 'error':
      return { type: 'error', ...errorOf(data as ErrorBody) }
    default:
      return null
  }
}

/** Decode one SSE frame of a playground stream; unknown frames give null. */
export function decodePlaygroundEvent(event: SseEvent): PlaygroundStreamEvent | null {
  const data = eventJson<Record<string, unknown>>(event)
  if (data === null || typeof data !== 'object') return null
  const index = typeof data.index === 'number' ? data.index : null
  switch (event.event) {
    case 'delta':
      if (index === null) return null
      return {
        type: 'delta',
        index,
        content: typeof data.content === 'string' ? data.content : '',
        reasoning: typeof data.reasoning_content === 'string' ? data.reasoning_content : '',
      }
    case 'result':
      if (index === null) return null
      return { type: 'result', index, result: data as Partial<PlaygroundResult> }
    case 'error':
      return { type: 'error', index, ...errorOf(data as ErrorBody) }
    case 'done':
      return { type: 'done', runId: typeof data.run_id === 'number' ? data.run_id : null }
    default:
      return null
  }
}

const BASE = '/api/chat'

/** POST and stream the answer, handing on each event `decode` understands. */
function streamDecoded<E>(
  url: string,
  body: unknown,
  decode: (raw: SseEvent) => E | null,
  onEvent: (event: E) => void,
  signal?: AbortSignal,
): Promise<void> {
  return streamSse({
    url,
    body,
    signal,
    onEvent: (raw) => {
      const event = decode(raw)
      if (event !== null) onEvent(event)
    },
  })
}

export const chatApi = {
  async listConversations(q: { q?: string; page?: number; page_size?: number } = {}): Promise<ConversationPage> {
    return requestJson('GET', `${BASE}/conversations`, { query: q })
  },
  async createConversation(body: ConversationInput = {}): Promise<ConversationDetail> {
    return requestJson('POST', `${BASE}/conversations`, { body })
  },
  async getConversation(id: number): Promise<ConversationDetail> {
    return requestJson('GET', `${BASE}/conversations/${id}`)
  },
  async updateConversation(id: number, body: ConversationInput): Promise<ConversationDetail> {
    return requestJson('PATCH', `${BASE}/conversations/${id}`, { body })
  },
  async deleteConversation(id: number): Promise<void> {
    await requestJson('DELETE', `${BASE}/conversations/${id}`)
  },
  /** The export as text (JSON or Markdown), for a file download. */
  async exportConversation(id: number, format: ExportFormat): Promise<string> {
    return fetchText(withQuery(`${BASE}/conversations/${id}/export`, { format }))
  },
  async importConversation(document: unknown): Promise<ConversationDetail> {
    return requestJson('POST', `${BASE}/conversations/import`, { body: document })
  },

  /** Send a user message and stream the answer. */
  send(id: number, body: SendInput, onEvent: (e: ChatStreamEvent) => void, signal?: AbortSignal): Promise<void> {
    return streamDecoded(`${BASE}/conversations/${id}/messages`, body, decodeChatEvent, onEvent, signal)
  },
  /** A new answer beside an assistant message (same parent), streamed like `send`. */
  regenerate(
    id: number,
    messageId: number,
    body: { model?: string | null; params?: ChatParams },
    onEvent: (e: ChatStreamEvent) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const url = `${BASE}/conversations/${id}/messages/${messageId}/regenerate`
    return streamDecoded(url, body, decodeChatEvent, onEvent, signal)
  },

  async listPrompts(query: { scope?: PromptScope; q?: string } = {}): Promise<PromptPage> {
    return requestJson('GET', `${BASE}/prompts`, { query: { page_size: 100, ...query } })
  },
  async renderPrompt(id: number, variables: Record<string, string>): Promise<{ content: string }> {
    return requestJson('POST', `${BASE}/prompts/${id}/render`, { body: { variables } })
  },
  async createPrompt(body: PromptInput): Promise<PromptTemplate> {
    return requestJson('POST', `${BASE}/prompts`, { body })
  },
  async updatePrompt(id: number, body: Partial<PromptInput>): Promise<PromptTemplate> {
    return requestJson('PATCH', `${BASE}/prompts/${id}`, { body })
  },
  async deletePrompt(id: number): Promise<void> {
    await requestJson('DELETE', `${BASE}/prompts/${id}`)
  },

  runPlayground(
    body: PlaygroundInput,
    onEvent: (e: PlaygroundStreamEvent) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    return streamDecoded(`${BASE}/playground`, body, decodePlaygroundEvent, onEvent, signal)
  },
  async listPlayground(): Promise<PlaygroundPage> {
    return requestJson('GET', `${BASE}/playground`, { query: { page_size: 50 } })
  },
  async getPlayground(id: number): Promise<PlaygroundRun> {
    return requestJson('GET', `${BASE}/playground/${id}`)
  },
  async deletePlayground(id: number): Promise<void> {
    await requestJson('DELETE', `${BASE}/playground/${id}`)
  },

  /** The models this user may chat with (same Bearer token as the rest of the app). */
  async models(): Promise<OpenAiModel[]> {
    const body = await requestJson<{ data?: OpenAiModel[] }>('GET', '/v1/models')
    return Array.isArray(body.data) ? body.data : []
  },
}
