/**
 * Pure helpers behind the job charts: smoothing, the shape ECharts wants, and durations.
 * Kept free of Vue and ECharts so they are unit-tested directly.
 */

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

/** 3725 → "1h 2m 5s"; 42 → "42s"; null → "—". */
export function formatDuration(seconds: number | null | undefined): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '—'
  const s = Math.round(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const rest = s % 60
  if (h > 0) return `${h}h ${m}m ${rest}s`
  if (m > 0) return `${m}m ${rest}s`
  return `${rest}s`
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
