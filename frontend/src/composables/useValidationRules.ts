import type { FormItemRule } from 'element-plus'
import { useI18n } from 'vue-i18n'

/** The same rules the server enforces (see the contract), checked before submitting. */
export const USERNAME_PATTERN = /^[A-Za-z0-9_-]{3,32}$/
export const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
export const MIN_PASSWORD_LENGTH = 8

export function useValidationRules() {
  const { t } = useI18n()

  // Messages are functions of the current locale, so switching language re-labels them.
  const required = (fieldKey: string): FormItemRule => ({
    required: true,
    trigger: 'blur',
    validator: (_rule, value: unknown, callback) =>
      typeof value === 'string' && value.trim().length > 0
        ? callback()
        : callback(new Error(t('validation.required', { field: t(fieldKey) }))),
  })

  const username: FormItemRule = {
    trigger: 'blur',
    validator: (_rule, value: string, callback) =>
      USERNAME_PATTERN.test(value ?? '') ? callback() : callback(new Error(t('validation.usernameFormat'))),
  }

  const email: FormItemRule = {
    trigger: 'blur',
    validator: (_rule, value: string, callback) =>
      EMAIL_PATTERN.test(value ?? '') ? callback() : callback(new Error(t('validation.email'))),
  }

  const password: FormItemRule = {
    trigger: 'blur',
    validator: (_rule, value: string, callback) =>
      (value ?? '').length >= MIN_PASSWORD_LENGTH ? callback() : callback(new Error(t('validation.passwordLength'))),
  }

  /** The value must equal `other()` (password confirmation). */
  const sameAs = (other: () => string): FormItemRule => ({
    trigger: 'blur',
    validator: (_rule, value: string, callback) =>
      value === other() ? callback() : callback(new Error(t('validation.passwordMismatch'))),
  })

  return { required, username, email, password, sameAs }
}
