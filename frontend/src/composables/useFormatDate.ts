import { useI18n } from 'vue-i18n'

/** Dates in the UI's language; null/undefined show as the given fallback text. */
export function useFormatDate() {
  const { locale } = useI18n()

  function formatDateTime(value: string | null | undefined, fallback = '—'): string {
    if (!value) return fallback
    const date = new Date(value)
    if (Number.isNaN(date.getTime())) return value
    return new Intl.DateTimeFormat(locale.value, { dateStyle: 'medium', timeStyle: 'short' }).format(date)
  }

  return { formatDateTime }
}
