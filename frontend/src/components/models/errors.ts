import { useI18n } from 'vue-i18n'

import { asApiError } from '@/api/errors'
import { useErrorText } from '@/composables/useErrorText'

/**
 * useErrorText plus the codes of the models pages (model_in_use, provider_unreachable…): those are
 * translated under `models.errors`, since the shared `serverErrors` table belongs to the shell.
 * A provider_unreachable keeps the server's reason after our sentence: it is what the user can act on.
 */
export function useModelsErrorText() {
  const { t, te } = useI18n()
  const base = useErrorText()
  return function errorText(err: unknown): string {
    const apiError = asApiError(err)
    const key = `models.errors.${apiError.code}`
    if (!te(key)) return base(err)
    if (apiError.code === 'provider_unreachable' && apiError.message) return `${t(key)} ${apiError.message}`
    return t(key)
  }
}
