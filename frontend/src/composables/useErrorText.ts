import { useI18n } from 'vue-i18n'

import { asApiError } from '@/api/errors'

/**
 * The text to show for an error: our own translation of its stable `code` when we have one
 * (server messages are English only), otherwise the server's message.
 */
export function useErrorText() {
  const { t, te } = useI18n()

  return function errorText(err: unknown): string {
    const apiError = asApiError(err)
    const key = `serverErrors.${apiError.code}`
    return te(key) ? t(key) : apiError.message
  }
}
