import ElementPlus from 'element-plus'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApp, defineComponent, h, nextTick, ref, type App } from 'vue'

import PromptPicker from '@/components/chat/PromptPicker.vue'
import { i18n } from '@/i18n'
import { useAuthStore } from '@/stores/auth'

const NOW = '2026-12-05T10:00:00Z'

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

const PROMPT = {
  id: 3,
  owner_id: 9,
  name: 'Reviewer',
  content: 'You review {{language}} code for {{team}}.',
  variables: ['language', 'team'],
  shared: true,
  editable: false,
  created_at: NOW,
  updated_at: NOW,
}

function fakeServer() {
  const bodies: unknown[] = []
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: Request) => {
      const path = new URL(input.url).pathname
      if (path === '/api/chat/prompts') return json(200, { items: [PROMPT], total: 1, page: 1, page_size: 100 })
      if (path === '/api/chat/prompts/3/render') {
        const body = (await input.json()) as { variables: Record<string, string> }
        bodies.push(body)
        if (!body.variables.team) {
          return json(422, {
            error: {
              code: 'validation_error',
              message: 'missing',
              details: [{ field: 'body.variables.team', message: 'Fill in team.' }],
            },
          })
        }
        return json(200, { content: `You review ${body.variables.language} code for ${body.variables.team}.` })
      }
      return json(404, { error: { code: 'not_found', message: 'no', details: [] } })
    }),
  )
  return bodies
}

let app: App | null = null
afterEach(() => {
  app?.unmount()
  app = null
  document.body.innerHTML = ''
})

async function settle(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
    await nextTick()
  }
  throw new Error(`timed out waiting for ${what}`)
}

function fill(testId: string, value: string): void {
  const node = document.querySelector(`[data-testid="${testId}"]`)!
  const input = (node instanceof HTMLInputElement ? node : node.querySelector('input'))!
  input.value = value
  input.dispatchEvent(new Event('input', { bubbles: true }))
}

describe('prompt library picker', { timeout: 30_000 }, () => {
  it('fills the variables, shows a missing one next to its field, and hands back the rendered text', async () => {
    const bodies = fakeServer()
    const pinia = createPinia()
    setActivePinia(pinia)
    useAuthStore().accessToken = 'token'
    const open = ref(false)
    const picked = ref<string | null>(null)
    const Host = defineComponent({
      setup: () => () =>
        h(PromptPicker, {
          modelValue: open.value,
          'onUpdate:modelValue': (v: boolean) => (open.value = v),
          onPicked: (text: string) => (picked.value = text),
        }),
    })
    const el = document.createElement('div')
    document.body.appendChild(el)
    app = createApp(Host).use(pinia).use(i18n).use(ElementPlus)
    app.mount(el)
    open.value = true

    await settle(() => document.querySelector('[data-testid="chat-prompt"]') !== null, 'the prompt list')
    expect(document.querySelector('[data-testid="chat-prompt"]')!.textContent).toContain('Reviewer')
    ;(document.querySelector('[data-testid="chat-prompt"]') as HTMLElement).click()
    await settle(() => document.querySelector('[data-testid="chat-prompt-var-team"]') !== null, 'the variables form')

    fill('chat-prompt-var-language', 'Rust')
    await nextTick()
    ;(document.querySelector('[data-testid="chat-prompt-use"]') as HTMLElement).click()
    await settle(() => document.body.textContent!.includes('Fill in team.'), 'the field error')
    expect(picked.value).toBeNull()

    fill('chat-prompt-var-team', 'the platform team')
    await nextTick()
    ;(document.querySelector('[data-testid="chat-prompt-use"]') as HTMLElement).click()
    await settle(() => picked.value !== null, 'the rendered prompt')
    expect(picked.value).toBe('You review Rust code for the platform team.')
    expect(open.value).toBe(false)
    expect(bodies).toEqual([
      { variables: { language: 'Rust' } },
      { variables: { language: 'Rust', team: 'the platform team' } },
    ])
  })
})
