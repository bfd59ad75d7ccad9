/**
 * The chat page's right-hand panel as state: the model, the system prompt and the sampling
 * parameters of the conversation, what each request sends of them, and saving them on the
 * conversation when they changed (before a message goes out).
 */
import { ref } from 'vue'

import { chatApi, type ConversationDetail, type ConversationInput } from '@/api/chat'

import { emptyParams, fromParams, toParams, type ParamsForm } from './params'

export function useChatSettings(defaultModel: string) {
  const model = ref<string>(defaultModel)
  const systemPrompt = ref('')
  const params = ref<ParamsForm>(emptyParams())

  /** Show a stored conversation's settings; without a model of its own the current one stays. */
  function apply(detail: ConversationDetail): void {
    model.value = detail.model ?? model.value
    systemPrompt.value = detail.system_prompt ?? ''
    params.value = fromParams(detail.params)
  }

  /** What a message or regenerate request carries besides its content. */
  const request = () => ({ model: model.value, params: toParams(params.value) })

  /** The whole panel, as a new conversation or a settings update sends it. */
  const asInput = (): ConversationInput => ({ ...request(), system_prompt: systemPrompt.value })

  /** Save the panel on the conversation when it changed; the updated conversation, or null when it had not. */
  async function save(detail: ConversationDetail): Promise<ConversationDetail | null> {
    const next = { model: model.value, system_prompt: systemPrompt.value, params: toParams(params.value) }
    const same =
      detail.model === next.model &&
      (detail.system_prompt ?? '') === next.system_prompt &&
      JSON.stringify(detail.params ?? {}) === JSON.stringify(next.params)
    if (same) return null
    const updated = await chatApi.updateConversation(detail.id, next)
    return { ...detail, ...updated, messages: detail.messages }
  }

  return { model, systemPrompt, params, apply, request, asInput, save }
}
