import ElementPlus from 'element-plus'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApp, nextTick, type App } from 'vue'
import { createMemoryHistory, createRouter, type Router } from 'vue-router'

import { i18n } from '@/i18n'
import { useAuthStore } from '@/stores/auth'
import ChatView from '@/views/chat/ChatView.vue'

// ----- a fake server: the chat API and /v1/models -----

interface Seen {
  method: string
  path: string
  body: unknown
}

const NOW = '2026-12-05T10:00:00Z'

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

function sse(frames: string[]): Response {
  const encoder = new TextEncoder()
  return new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const frame of frames) controller.enqueue(encoder.encode(frame))
        controller.close()
      },
    }),
    { status: 200, headers: { 'Content-Type': 'text/event-stream' } },
  )
}

function message(id: number, role: 'user' | 'assistant', content: string, parent: number | null, extra = {}) {
  return {
    id,
    conversation_id: 5,
    parent_id: parent,
    role,
    content,
    reasoning_content: null,
    model: role === 'assistant' ? 'demo-tiny' : null,
    params: {},
    prompt_tokens: role === 'assistant' ? 7 : null,
    completion_tokens: role === 'assistant' ? 3 : null,
    latency_ms: role === 'assistant' ? 120 : null,
    ttft_ms: role === 'assistant' ? 20 : null,
    finish_reason: role === 'assistant' ? 'stop' : null,
    created_at: NOW,
    siblings: [id],
    ...extra,
  }
}

function conversation(messages: unknown[]) {
  return {
    id: 5,
    owner_id: 1,
    title: messages.length ? 'Hello there' : 'New chat',
    model: 'demo-tiny',
    system_prompt: '',
    params: {},
    head_message_id: null,
    created_at: NOW,
    updated_at: NOW,
    message_count: messages.length,
    messages,
  }
}

function fakeServer(opts: { hold?: boolean } = {}) {
  const seen: Seen[] = []
  let stored: unknown[] = []
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: Request) => {
      const text = input.method === 'GET' ? '' : await input.text()
      const url = new URL(input.url)
      const req = { method: input.method, path: url.pathname, body: text ? JSON.parse(text) : null }
      seen.push(req)
      if (req.path === '/v1/models') {
        return json(200, {
          object: 'list',
          data: [
            { id: 'demo-tiny', object: 'model' },
            { id: 'other-model', object: 'model' },
          ],
        })
      }
      if (req.path === '/api/chat/conversations' && req.method === 'GET') {
        return json(200, { items: stored.length ? [conversation([])] : [], total: 0, page: 1, page_size: 100 })
      }
      if (req.path === '/api/chat/conversations' && req.method === 'POST') return json(201, conversation([]))
      if (req.path === '/api/chat/conversations/5' && req.method === 'GET') return json(200, conversation(stored))
      if (req.path === '/api/chat/conversations/5' && req.method === 'PATCH') return json(200, conversation(stored))
      if (req.path === '/api/chat/conversations/5/messages' && opts.hold) {
        // Streams a first piece and then nothing until the client goes away.
        const user = message(10, 'user', (req.body as { content: string }).content, null)
        const encoder = new TextEncoder()
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(encoder.encode(`event: message\ndata: ${JSON.stringify(user)}\n\n`))
            controller.enqueue(encoder.encode('event: delta\ndata: {"content":"partial answ"}\n\n'))
          },
          cancel() {
            aborted.value = true
          },
        })
        return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
      }
      if (req.path === '/api/chat/conversations/5/messages') {
        const user = message(10, 'user', (req.body as { content: string }).content, null)
        const answer = message(11, 'assistant', 'Hi **there**', 10, { reasoning_content: 'thinking' })
        stored = [user, answer]
        return sse([
          `event: message\ndata: ${JSON.stringify(user)}\n\n`,
          'event: delta\ndata: {"reasoning_content":"thinking"}\n\n',
          'event: delta\ndata: {"content":"Hi "}\n\nevent: del',
          'ta\ndata: {"content":"**there**"}\n\n',
          `event: done\ndata: ${JSON.stringify(answer)}\n\n`,
        ])
      }
      return json(404, { error: { code: 'not_found', message: 'no', details: [] } })
    }),
  )
  return seen
}
const aborted = { value: false }

// ----- mounting -----

let app: App | null = null
afterEach(() => {
  app?.unmount()
  app = null
  document.body.innerHTML = ''
})

async function settle(check: () => boolean, what: string): Promise<void> {
  // Bounded: the stream and the 50 ms delta flush run on real timers.
  for (let i = 0; i < 200; i++) {
    if (check()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
    await nextTick()
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function mountChat(path: string): Promise<{ el: HTMLElement; router: Router }> {
  const pinia = createPinia()
  setActivePinia(pinia)
  const auth = useAuthStore()
  auth.accessToken = 'token'
  auth.user = { id: 1, username: 'ann', email: 'ann@example.com', role: 'researcher' }
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/chat', name: 'chat', component: ChatView },
      { path: '/chat/:id(\\d+)', name: 'chat-conversation', component: ChatView },
      { path: '/', component: { template: '<div/>' } },
    ],
  })
  await router.push(path)
  await router.isReady()
  const el = document.createElement('div')
  document.body.appendChild(el)
  app = createApp({ template: '<router-view />' }).use(pinia).use(router).use(i18n).use(ElementPlus)
  app.mount(el)
  return { el, router }
}

function q(el: ParentNode, testId: string): HTMLElement | null {
  return el.querySelector(`[data-testid="${testId}"]`)
}

/** The input's textarea (Element Plus puts the test id on the textarea itself or on its wrapper). */
function input(el: HTMLElement): HTMLTextAreaElement {
  const node = q(el, 'chat-input')!
  return (node instanceof HTMLTextAreaElement ? node : node.querySelector('textarea'))!
}

async function type(el: HTMLElement, text: string): Promise<void> {
  const textarea = input(el)
  textarea.value = text
  textarea.dispatchEvent(new Event('input', { bubbles: true }))
  await nextTick()
}

function selectedModel(el: HTMLElement): string {
  const shown = q(el, 'chat-model-select')!.querySelector('.el-select__placeholder:not(.is-transparent)')
  return shown?.textContent?.trim() ?? ''
}

describe('chat page', { timeout: 30_000 }, () => {
  it('creates the conversation on the first message and streams the answer into it', async () => {
    const seen = fakeServer()
    const { el, router } = await mountChat('/chat?model=demo-tiny')
    await settle(() => q(el, 'chat-empty') !== null, 'the empty state')

    await type(el, 'Hello there')
    const textarea = input(el)
    textarea.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }))

    await settle(
      () => el.querySelectorAll('[data-testid="chat-message"][data-pending="false"]').length === 2,
      'both stored messages',
    )
    expect(router.currentRoute.value.fullPath).toBe('/chat/5?model=demo-tiny')
    const [user, answer] = [...el.querySelectorAll('[data-testid="chat-message"]')]
    expect(user!.getAttribute('data-role')).toBe('user')
    expect(user!.textContent).toContain('Hello there')
    expect(answer!.querySelector('[data-testid="chat-message-content"]')!.innerHTML).toContain('<strong>there</strong>')
    expect(answer!.querySelector('[data-testid="chat-message-stats"]')!.textContent).toContain('7→3')
    expect(answer!.querySelector('[data-testid="chat-reasoning"]')).not.toBeNull()
    expect(q(el, 'chat-title')!.textContent).toBe('Hello there')

    const posted = seen.filter((r) => r.method === 'POST')
    expect(posted.map((r) => r.path)).toEqual(['/api/chat/conversations', '/api/chat/conversations/5/messages'])
    expect(posted[0]!.body).toMatchObject({ model: 'demo-tiny' })
    expect(posted[1]!.body).toEqual({ content: 'Hello there', model: 'demo-tiny', params: {} })
    // Shift+Enter does not send.
    await type(el, 'second line')
    textarea.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', shiftKey: true, bubbles: true }))
    await nextTick()
    expect(seen.filter((r) => r.method === 'POST')).toHaveLength(2)
  })

  it('asks before a model switch throws away an unsent draft', async () => {
    fakeServer()
    const { el } = await mountChat('/chat')
    await settle(() => selectedModel(el) === 'demo-tiny', 'the default model')
    await type(el, 'not sent yet')

    const pick = async (name: string) => {
      ;(q(el, 'chat-model-select')!.querySelector('.el-select__wrapper') as HTMLElement).click()
      const option = () =>
        [...document.querySelectorAll<HTMLElement>('.el-select-dropdown__item')].find(
          (o) => o.textContent?.trim() === name,
        )
      await settle(() => option() !== undefined, `the option ${name}`)
      option()!.click()
      await settle(() => document.querySelector('.el-message-box') !== null, 'the confirm dialog')
    }

    // Keep the draft: the model stays.
    await pick('other-model')
    ;(document.querySelector('.el-message-box__btns .el-button:not(.el-button--primary)') as HTMLElement).click()
    // Let the rejected confirm reach the guard (a few macrotasks, no time-based assertion).
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0))
    await nextTick()
    expect(selectedModel(el)).toBe('demo-tiny')
    expect(input(el).value).toBe('not sent yet')

    // Discard it: the model changes and the input is empty.
    await pick('other-model')
    const boxes = document.querySelectorAll('.el-message-box')
    ;(boxes[boxes.length - 1]!.querySelector('.el-message-box__btns .el-button--primary') as HTMLElement).click()
    await settle(() => selectedModel(el) === 'other-model', 'the new model')
    expect(input(el).value).toBe('')
  })

  it('stops a streaming answer: the connection is closed and the partial answer stays, marked stopped', async () => {
    aborted.value = false
    fakeServer({ hold: true })
    const { el } = await mountChat('/chat')
    await settle(() => selectedModel(el) === 'demo-tiny', 'the default model')
    await type(el, 'Tell me a long story')
    ;(q(el, 'chat-send') as HTMLElement).click()

    await settle(() => el.textContent!.includes('partial answ'), 'the first piece')
    expect(input(el).disabled).toBe(true)
    ;(q(el, 'chat-stop') as HTMLElement).click()

    await settle(() => q(el, 'chat-send') !== null, 'the send button back')
    expect(aborted.value).toBe(true)
    const answer = [...el.querySelectorAll('[data-testid="chat-message"][data-role="assistant"]')].at(-1)!
    expect(answer.textContent).toContain('partial answ')
    expect(answer.textContent).toContain('Stopped')
    expect(answer.querySelector('[data-testid="chat-message-error"]')).toBeNull()
    expect(input(el).disabled).toBe(false)
  })
})
