/**
 * Usage figures as the UI shows them: calendar months (UTC, `YYYY-MM`, as the server groups usage),
 * how far a quota is used, hours, money, and storage in GB for the quota form.
 * Plain TypeScript so it is unit-tested directly.
 */

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/
const GB = 1024 ** 3

/** `YYYY-MM` of a moment, in UTC (the server's accounting months are UTC). */
export function monthOf(date: Date): string {
  return `${date.getUTCFullYear()}-${String(date.getUTCMonth() + 1).padStart(2, '0')}`
}

export function isMonth(value: unknown): value is string {
  return typeof value === 'string' && MONTH.test(value)
}

/** The month `delta` months after (or before, when negative) `month`. */
export function shiftMonth(month: string, delta: number): string {
  const match = MONTH.exec(month)
  if (!match) throw new Error(`not a month: ${month}`)
  const index = Number(match[1]) * 12 + Number(match[2]) - 1 + delta
  return `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, '0')}`
}

/**
 * The last `count` months ending with `last`, oldest first, each with the server's figures or zeros
 * (a chart of 12 bars even for a user who trained in two of them).
 */
export function fillMonths<T extends { month: string }>(
  rows: readonly T[],
  last: string,
  empty: (month: string) => T,
  count = 12,
): T[] {
  const byMonth = new Map(rows.map((row) => [row.month, row]))
  return Array.from({ length: count }, (_, i) => {
    const month = shiftMonth(last, i - count + 1)
    return byMonth.get(month) ?? empty(month)
  })
}

export type QuotaState = 'unlimited' | 'ok' | 'warning' | 'exceeded'

/** How much of a quota is used: percent for the bar (capped at 100) and its state (warning from 80 %). */
export function quotaUse(used: number, limit: number | null | undefined): { percent: number; state: QuotaState } {
  if (limit === null || limit === undefined || !Number.isFinite(limit)) return { percent: 0, state: 'unlimited' }
  if (limit <= 0) return { percent: 100, state: used > 0 ? 'exceeded' : 'warning' }
  const share = (Math.max(0, used) / limit) * 100
  const state: QuotaState = share >= 100 ? 'exceeded' : share >= 80 ? 'warning' : 'ok'
  return { percent: Math.min(100, Math.round(share * 10) / 10), state }
}

/** The progress bar's colour for a quota state (Element Plus status names). */
export function quotaBarStatus(state: QuotaState): '' | 'success' | 'warning' | 'exception' {
  if (state === 'exceeded') return 'exception'
  if (state === 'warning') return 'warning'
  return state === 'ok' ? 'success' : ''
}

/** Hours with sensible precision: 0.0042 → "0.004", 3.14159 → "3.14", 1234.5 → "1,235". */
export function formatHours(hours: number | null | undefined, locale: string): string {
  if (typeof hours !== 'number' || !Number.isFinite(hours)) return '—'
  const abs = Math.abs(hours)
  const digits = abs === 0 ? 0 : abs < 0.01 ? 4 : abs < 1 ? 3 : abs < 100 ? 2 : 0
  return new Intl.NumberFormat(locale, { maximumFractionDigits: digits }).format(hours)
}

/** A whole number in the UI's language (tokens, jobs). */
export function formatCount(value: number | null | undefined, locale: string): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—'
  return new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }).format(value)
}

/**
 * Money in the configured currency; null (no prices configured) shows as the fallback. A currency
 * that is not an ISO code (e.g. "credits") is written after the number instead.
 */
export function formatCost(cost: number | null | undefined, currency: string, locale: string, fallback = '—'): string {
  if (typeof cost !== 'number' || !Number.isFinite(cost)) return fallback
  const digits = cost !== 0 && Math.abs(cost) < 0.01 ? 4 : 2
  try {
    return new Intl.NumberFormat(locale, {
      style: 'currency',
      currency,
      minimumFractionDigits: 2,
      maximumFractionDigits: digits,
    }).format(cost)
  } catch {
    const number = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: digits })
    return `${number.format(cost)} ${currency}`
  }
}

/** Storage quotas are edited in GB (binary, as the sizes elsewhere) and sent in bytes. */
export function gbToBytes(gb: number | null | undefined): number | null {
  if (typeof gb !== 'number' || !Number.isFinite(gb)) return null
  return Math.round(gb * GB)
}

export function bytesToGb(bytes: number | null | undefined): number | null {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes)) return null
  return Math.round((bytes / GB) * 100) / 100
}

/** The admin report's CSV address for a month. */
export function usageCsvPath(month: string): string {
  return `/api/admin/usage?${new URLSearchParams({ month, format: 'csv' }).toString()}`
}
