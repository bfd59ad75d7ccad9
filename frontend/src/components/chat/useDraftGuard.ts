/**
 * "You have an unsent message" for the chat page: switching the model or leaving the page with
 * text in the input asks first (the rule itself, mayDiscardDraft, is in draft.ts).
 */
import type { Ref } from 'vue'
import { useI18n } from 'vue-i18n'
import { onBeforeRouteLeave } from 'vue-router'

import { useConfirm } from '@/composables/useConfirm'

import { mayDiscardDraft } from './draft'

export function useDraftGuard(draft: Ref<string>) {
  const { t } = useI18n()
  const confirm = useConfirm()

  const askDiscard = () =>
    confirm(t('chat.draft.message'), t('chat.draft.title'), {
      confirmText: t('chat.draft.discard'),
      cancelText: t('chat.draft.keep'),
    })

  /** Before the model changes: true (and the draft is gone) when it may. */
  async function beforeModelChange(): Promise<boolean> {
    if (!(await mayDiscardDraft(draft.value, askDiscard))) return false
    draft.value = ''
    return true
  }

  onBeforeRouteLeave(() => mayDiscardDraft(draft.value, askDiscard))

  return { beforeModelChange }
}
