/**
 * Which way a score is better and what a change of it means: the rule the model page's scores and the
 * evaluation pages share. Lower is better for perplexity, loss, latency and the judge's unparseable
 * share; higher for everything else (BLEU, ROUGE, exact match, accuracy, judge score, ...).
 */

export type Direction = 'higher' | 'lower'
/** How a delta reads: better (green, up), worse (red, down), or no change / unknown. */
export type DeltaTone = 'better' | 'worse' | 'same' | 'none'

const LOWER_IS_BETTER = /^(perplexity|loss|judge_unparseable)$|latency/

export function scoreDirection(key: string, given?: Record<string, Direction>): Direction {
  return given?.[key] ?? (LOWER_IS_BETTER.test(key) ? 'lower' : 'higher')
}

function isNum(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

/** The tone of `delta` (value − base) for `key`: a falling perplexity is better, a falling accuracy worse. */
export function deltaTone(key: string, delta: number | null | undefined, given?: Record<string, Direction>): DeltaTone {
  if (!isNum(delta)) return 'none'
  if (delta === 0) return 'same'
  const lower = scoreDirection(key, given) === 'lower'
  return delta < 0 === lower ? 'better' : 'worse'
}

/** The arrow shows the change itself (up = the number rose), the colour whether that is good. */
export function deltaArrow(delta: number | null | undefined): '↑' | '↓' | '' {
  if (!isNum(delta) || delta === 0) return ''
  return delta > 0 ? '↑' : '↓'
}

/** A score for display: at most 4 decimals, trailing zeros dropped. */
export function formatScore(value: number | null | undefined): string {
  if (!isNum(value)) return '—'
  const abs = Math.abs(value)
  const digits = abs >= 100 ? 2 : abs >= 1 ? 3 : 4
  return String(Number(value.toFixed(digits)))
}

/** A signed delta (`+1.5`, `−0.25`, `±0`); '' when unknown. */
export function formatDelta(value: number | null | undefined): string {
  if (!isNum(value)) return ''
  return `${value > 0 ? '+' : value < 0 ? '−' : '±'}${formatScore(Math.abs(value))}`
}

// The order keys are read in (the engine's totals keys); others (per-subject accuracies) follow by name.
const ORDER = [
  'bleu-4',
  'rouge-1',
  'rouge-2',
  'rouge-l',
  'sacrebleu',
  'chrf',
  'exact_match',
  'contains',
  'regex',
  'valid_json',
  'multiple_choice',
  'judge_score',
  'judge_unparseable',
  'perplexity',
  'loss',
]

/** The numeric keys of `metrics` in reading order. */
export function scoreKeys(metrics: Record<string, unknown>): string[] {
  const rank = (key: string) => {
    const at = ORDER.indexOf(key)
    return at === -1 ? ORDER.length : at
  }
  return Object.keys(metrics)
    .filter((key) => isNum(metrics[key]))
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
}
