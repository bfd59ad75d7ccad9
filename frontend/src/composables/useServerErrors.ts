import { reactive, ref } from 'vue'

import { asApiError, splitFormErrors } from '@/api/errors'

import { useErrorText } from './useErrorText'

export interface ServerErrorOptions<F extends string> {
  /** How a known error code reads (default: useErrorText). */
  errorText?: (err: unknown) => string
  /** Codes that are about one field whatever the details say (e.g. model_name_taken → name). */
  codeFields?: Readonly<Record<string, F>>
}

/**
 * Server-side errors for one form: `fields[name]` feeds `<el-form-item :error>`, `general`
 * feeds an alert above the form. Call `clear()` before submitting and `apply(err)` on failure.
 */
export function useServerErrors<F extends string>(
  formFields: readonly F[],
  fieldAliases: Readonly<Record<string, F>> = {},
  options: ServerErrorOptions<F> = {},
) {
  const fields: Partial<Record<F, string>> = reactive({})
  const general = ref<string | null>(null)
  const errorText = options.errorText ?? useErrorText()

  function clear(): void {
    for (const key of Object.keys(fields) as F[]) delete fields[key]
    general.value = null
  }

  function apply(err: unknown): void {
    clear()
    const apiError = asApiError(err)
    const split = splitFormErrors(apiError, formFields, fieldAliases)
    const placed = Object.keys(split.fields) as F[]
    // A single field error with a known code (e.g. username_taken) reads better translated.
    if (placed.length === 1 && apiError.details.length === 1 && errorText(apiError) !== apiError.message) {
      split.fields[placed[0]!] = errorText(apiError)
    }
    Object.assign(fields, split.fields)
    const codeField = options.codeFields?.[apiError.code]
    if (codeField !== undefined) fields[codeField] = errorText(apiError)
    // The whole-form message (nothing placed on a field) is the one we can translate by code.
    else general.value = split.general === apiError.message ? errorText(apiError) : split.general
  }

  return { fields, general, clear, apply }
}
