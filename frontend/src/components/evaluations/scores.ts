/**
 * Scores as the results table, the charts and the compare page show them: which totals keys there
 * are (in a fixed reading order), which way is better, the best model per key, deltas against a
 * baseline, and the bar / radar chart options. Plain TypeScript, tested on its own.
 */
import type { Direction, EvaluationRun } from '@/api/evaluations'
import { scoreDirection, scoreKeys } from '@/lib/scoreDelta'

// How a score and a delta read: the one formatting, shared with the model page's scores.
export { formatDelta, formatScore } from '@/lib/scoreDelta'

/** One model's totals: a run of an evaluation, or a row of a comparison. */
export interface ScoreRow {
  id: number
  model: string
  metrics: Record<string, number>
}

/** Which way is better for `key` (the one rule, shared with the model page's scores). */
export const direction = scoreDirection

/** Every numeric key any row has, in the engine's reading order. */
export function metricKeys(rows: readonly ScoreRow[]): string[] {
  const seen: Record<string, number> = {}
  for (const row of rows) for (const [key, value] of Object.entries(row.metrics)) if (isNum(value)) seen[key] = value
  return scoreKeys(seen)
}

function isNum(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

/** The rows that scored, as ScoreRows (a run without results yet has none). */
export function runRows(runs: readonly EvaluationRun[]): ScoreRow[] {
  return runs
    .filter((run) => run.results?.metrics)
    .map((run) => ({ id: run.id, model: run.model, metrics: run.results!.metrics }))
}

/** The row with the best value of `key` (the first of a tie), or null when no row has it. */
export function topRow(rows: readonly ScoreRow[], key: string, given?: Record<string, Direction>): ScoreRow | null {
  const lower = direction(key, given) === 'lower'
  let top: ScoreRow | null = null
  for (const row of rows) {
    const value = row.metrics[key]
    if (!isNum(value)) continue
    if (top === null || (lower ? value < top.metrics[key]! : value > top.metrics[key]!)) top = row
  }
  return top
}

/**
 * key → id of the best row (a tie for the best: the first of them), as the server's comparison marks
 * it: no best where every row scores the same (one model alone included) — there is nothing to win.
 */
export function bestByMetric(
  rows: readonly ScoreRow[],
  keys: readonly string[],
  given?: Record<string, Direction>,
): Record<string, number> {
  const best: Record<string, number> = {}
  for (const key of keys) {
    const values = new Set(rows.map((row) => row.metrics[key]).filter(isNum))
    const top = topRow(rows, key, given)
    if (values.size >= 2 && top) best[key] = top.id
  }
  return best
}

/** row − baseline per key (null where either lacks the key); the baseline's own deltas are all null. */
export function deltasAgainst(
  rows: readonly ScoreRow[],
  baselineId: number | null,
  keys: readonly string[],
): Record<number, Record<string, number | null>> {
  const base = rows.find((r) => r.id === baselineId)
  const out: Record<number, Record<string, number | null>> = {}
  for (const row of rows) {
    out[row.id] = Object.fromEntries(
      keys.map((key) => {
        const a = base?.metrics[key]
        const b = row.metrics[key]
        return [key, row !== base && isNum(a) && isNum(b) ? b - a : null]
      }),
    )
  }
  return out
}

/** Is a delta an improvement (true), a regression (false), or neither (null)? */
export function deltaIsBetter(key: string, delta: number | null, given?: Record<string, Direction>): boolean | null {
  if (delta === null || delta === 0) return null
  return direction(key, given) === 'lower' ? delta < 0 : delta > 0
}

/**
 * The radar's value for one key: scores on a common 0–1 scale so metrics of different ranges share the
 * chart (best = 1); for lower-is-better keys the smallest value scores 1.
 */
export function radarValue(value: number | undefined, all: readonly number[], dir: Direction): number | null {
  if (!isNum(value) || all.length === 0) return null
  if (dir === 'lower') {
    const min = Math.min(...all)
    return value <= 0 ? 1 : Number((Math.max(min, 0) / value || 0).toFixed(4))
  }
  const max = Math.max(...all)
  return max <= 0 ? 0 : Number((value / max).toFixed(4))
}

export interface ChartData {
  keys: string[]
  models: string[]
  /** One series per model: values per key (null: not scored). */
  values: (number | null)[][]
  /** The same on the 0–1 radar scale. */
  radar: (number | null)[][]
}

export function chartData(
  rows: readonly ScoreRow[],
  keys: readonly string[],
  given?: Record<string, Direction>,
): ChartData {
  const radar = rows.map((row) =>
    keys.map((key) => {
      const all = rows.map((r) => r.metrics[key]).filter(isNum)
      return radarValue(row.metrics[key], all, direction(key, given))
    }),
  )
  return {
    keys: [...keys],
    models: rows.map((r) => r.model),
    values: rows.map((row) => keys.map((key) => (isNum(row.metrics[key]) ? row.metrics[key]! : null))),
    radar,
  }
}
