import { useI18n } from 'vue-i18n'

import { formatDateTime as formatIn, formatDuration as durationIn, type DateStyle } from '@/lib/format'

/** lib/format's date and duration formatters in the UI's current language. */
export function useFormatDate() {
  const { locale } = useI18n()

  function formatDateTime(value: string | null | undefined, fallback = '—', style: DateStyle = 'datetime'): string {
    return formatIn(value, locale.value, style, fallback)
  }

  function formatDuration(seconds: number | null | undefined): string {
    return durationIn(seconds, locale.value)
  }

  return { formatDateTime, formatDuration }
}
