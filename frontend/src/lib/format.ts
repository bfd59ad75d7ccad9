const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'] as const

/** 1536 → "1.5 KB" (binary multiples, the way file managers show sizes). */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—'
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`
}

/** How much of a point in time to show: the date and time (tables), or only one of them. */
export type DateStyle = 'datetime' | 'date' | 'time'

const DATE_STYLES: Record<DateStyle, Intl.DateTimeFormatOptions> = {
  datetime: { dateStyle: 'medium', timeStyle: 'short' },
  date: { dateStyle: 'medium' },
  time: { timeStyle: 'medium' },
}

/**
 * The one way the UI writes a point in time, in the UI's language and the browser's time zone.
 * The API sends ISO 8601 strings everywhere (a number would be Unix seconds, which `new Date()`
 * reads as milliseconds: January 1970); anything that is not a valid ISO time shows as `fallback`
 * (null / empty) or as itself.
 */
export function formatDateTime(
  value: string | null | undefined,
  locale: string,
  style: DateStyle = 'datetime',
  fallback = '—',
): string {
  if (!value) return fallback
  const date = new Date(value)
  if (Number.isNaN(date.getTime())) return value
  return new Intl.DateTimeFormat(locale, DATE_STYLES[style]).format(date)
}

interface DurationUnits {
  h: string
  m: string
  s: string
  join: string
}
const DURATION_UNITS: Record<'en' | 'zh', DurationUnits> = {
  en: { h: 'h', m: 'm', s: 's', join: ' ' },
  zh: { h: '小时', m: '分', s: '秒', join: '' },
}

/** 3725 → "1h 2m 5s" (en) or "1小时2分5秒" (zh-CN); 215 → "3m 35s" / "3分35秒"; null → "—". */
export function formatDuration(seconds: number | null | undefined, locale = 'en'): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '—'
  const units = DURATION_UNITS[locale.toLowerCase().startsWith('zh') ? 'zh' : 'en']
  const total = Math.round(seconds)
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = total % 60
  const parts =
    h > 0
      ? [
          [h, units.h],
          [m, units.m],
          [s, units.s],
        ]
      : m > 0
        ? [
            [m, units.m],
            [s, units.s],
          ]
        : [[s, units.s]]
  return parts.map(([n, unit]) => `${n}${unit}`).join(units.join)
}
