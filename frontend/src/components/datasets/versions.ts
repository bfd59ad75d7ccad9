/** Reading version recipes and compare results for display. */

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The recipe's kind: upload, preprocess, rollback (or whatever the server calls it). */
export function recipeKind(recipe: unknown): string {
  if (typeof recipe === 'string') return recipe
  if (isRecord(recipe)) {
    for (const key of ['kind', 'type', 'op', 'source'])
      if (typeof recipe[key] === 'string') return recipe[key] as string
  }
  return 'unknown'
}

function scalar(value: unknown): string {
  if (value === true) return '✓'
  if (typeof value === 'string' || typeof value === 'number') return String(value)
  return JSON.stringify(value)
}

function isSet(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === '') return false
  if (Array.isArray(value)) return value.length > 0
  if (isRecord(value)) return Object.keys(value).length > 0
  return true
}

/**
 * The recipe without its kind, as short "key: value" items: options that are off, empty values
 * and internal ids are left out, nested options are flattened, a report reads "4 → 3 rows".
 */
export function recipeDetails(recipe: unknown): string[] {
  if (!isRecord(recipe)) return []
  const items: string[] = []
  for (const [key, value] of Object.entries(recipe)) {
    if (['kind', 'type', 'op'].includes(key) || key.endsWith('_id') || !isSet(value)) continue
    if (key === 'report' && isRecord(value) && typeof value.original_rows === 'number') {
      items.push(`${value.original_rows} → ${String(value.processed_rows)}`)
      continue
    }
    if (isRecord(value) && key === 'options') {
      for (const [option, setting] of Object.entries(value)) {
        if (isSet(setting) && !(option === 'length_unit' && setting === 'chars')) {
          items.push(setting === true ? option : `${option}: ${scalar(setting)}`)
        }
      }
      continue
    }
    items.push(`${key}: ${scalar(value)}`)
  }
  return items
}

export interface CompareSide {
  count: number
  samples: unknown[]
}

export interface CompareView {
  added: CompareSide
  removed: CompareSide
  changed: CompareSide
}

function side(value: unknown, extraSamples: unknown): CompareSide {
  if (typeof value === 'number') return { count: value, samples: Array.isArray(extraSamples) ? extraSamples : [] }
  if (Array.isArray(value)) return { count: value.length, samples: value }
  if (isRecord(value)) {
    const samples = Array.isArray(value.samples) ? value.samples : Array.isArray(extraSamples) ? extraSamples : []
    const count = typeof value.count === 'number' ? value.count : samples.length
    return { count, samples }
  }
  return { count: 0, samples: Array.isArray(extraSamples) ? extraSamples : [] }
}

export function compareView(raw: unknown): CompareView {
  const r = isRecord(raw) ? raw : {}
  const samples = isRecord(r.samples) ? r.samples : {}
  return {
    added: side(r.added, samples.added ?? r.added_samples),
    removed: side(r.removed, samples.removed ?? r.removed_samples),
    changed: side(r.changed, samples.changed ?? r.changed_samples),
  }
}

/** A changed sample is usually {row, before, after}; both sides (and the row number) when present. */
export function changedPair(sample: unknown): { before: unknown; after: unknown; row: number | null } | null {
  if (!isRecord(sample)) return null
  const row = typeof sample.row === 'number' ? sample.row : null
  if ('before' in sample && 'after' in sample) return { before: sample.before, after: sample.after, row }
  if ('old' in sample && 'new' in sample) return { before: sample.old, after: sample.new, row }
  return null
}

export interface ReportView {
  original: number | null
  processed: number | null
  removed: [string, number][]
}

export function reportView(raw: unknown): ReportView | null {
  if (!isRecord(raw)) return null
  const report = isRecord(raw.report) ? raw.report : raw
  const original = typeof report.original_rows === 'number' ? report.original_rows : null
  const processed = typeof report.processed_rows === 'number' ? report.processed_rows : null
  if (original === null && processed === null) return null
  const removed = isRecord(report.removed)
    ? Object.entries(report.removed).filter((e): e is [string, number] => typeof e[1] === 'number')
    : []
  return { original, processed, removed }
}

/** Added samples carry `after`, removed ones `before` (with their row number): show that side. */
export function sideSample(sample: unknown, side: 'before' | 'after'): unknown {
  return isRecord(sample) && side in sample ? sample[side] : sample
}

export interface EstimateView {
  rowsIn: number
  sampleRows: number
  extrapolated: boolean
}

/** How a dry run's report was counted: over every row, or over the first `sampleRows` and scaled. */
export function estimateView(raw: unknown): EstimateView | null {
  const estimate = isRecord(raw) && isRecord(raw.estimate) ? raw.estimate : null
  if (!estimate || typeof estimate.rows_in !== 'number' || typeof estimate.sample_rows !== 'number') return null
  return { rowsIn: estimate.rows_in, sampleRows: estimate.sample_rows, extrapolated: estimate.extrapolated === true }
}

/** "Use for training": the job form with this dataset and its current version (query keys the form reads). */
export function trainingRoute(dataset: { id: number; current_version_id: number | null }): {
  name: 'job-new'
  query: Record<string, string>
} {
  const query: Record<string, string> = { dataset: String(dataset.id) }
  if (dataset.current_version_id !== null) query.version = String(dataset.current_version_id)
  return { name: 'job-new', query }
}
