/**
 * Pure helpers behind the job charts: smoothing, the shape ECharts wants, and durations.
 * Kept free of components and ECharts so they are unit-tested directly (durations read the UI's
 * language from the i18n instance).
 */
import { i18n } from '@/i18n'
import { formatDuration as durationIn } from '@/lib/format'

/**
 * Exponential moving average with TensorBoard's debiasing (the first points are not dragged
 * towards zero). `weight` 0 returns the input; 0.99 is very smooth. Nulls stay null.
 */
export function ema(values: readonly (number | null | undefined)[], weight: number): (number | null)[] {
  const w = Math.min(Math.max(weight, 0), 0.999)
  if (w === 0) return values.map((v) => (typeof v === 'number' && Number.isFinite(v) ? v : null))
  let last = 0
  let count = 0
  return values.map((v) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return null
    last = last * w + (1 - w) * v
    count++
    return last / (1 - w ** count)
  })
}

/** [[x, y], …] pairs for a line series, skipping points without a value (or ≤ 0 on a log axis). */
export function pairs(
  xs: readonly number[],
  ys: readonly (number | null | undefined)[],
  logScale = false,
): [number, number][] {
  const out: [number, number][] = []
  for (let i = 0; i < xs.length; i++) {
    const y = ys[i]
    if (typeof y !== 'number' || !Number.isFinite(y)) continue
    if (logScale && y <= 0) continue
    out.push([xs[i]!, y])
  }
  return out
}

/** lib/format's duration ("3m 35s", "3分35秒") in the UI's current language (read while rendering,
 * so a template that shows it follows a language switch). */
export function formatDuration(seconds: number | null | undefined): string {
  return durationIn(seconds, i18n.global.locale.value)
}

/** A 0..1 fraction as a whole percentage for el-progress (clamped). */
export function percent(fraction: number | null | undefined): number {
  if (typeof fraction !== 'number' || !Number.isFinite(fraction)) return 0
  return Math.round(Math.min(Math.max(fraction, 0), 1) * 1000) / 10
}

/** Numbers for axes and tooltips: small learning rates in exponent form, losses with 4 digits. */
export function formatNumber(value: number | null | undefined): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—'
  if (value !== 0 && Math.abs(value) < 1e-3) return value.toExponential(2)
  return Number(value.toPrecision(4)).toString()
}
