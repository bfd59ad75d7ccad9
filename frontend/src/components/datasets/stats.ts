/**
 * The statistics response, read defensively into what the charts need: histograms as
 * (label, count) pairs and role counts as (name, value). Accepts the shapes a histogram is
 * commonly sent in: {edges, counts}, [{start, end, count}], {"label": count} or [[label, count]].
 */

export interface Bar {
  label: string
  count: number
}

export interface StatsView {
  rows: number | null
  characters: number | null
  duplicates: number | null
  empty: number | null
  approximate: boolean
  tokenizer: string | null
  tokenHistogram: Bar[]
  turns: Bar[]
  roles: { name: string; value: number }[]
  tokenSummary: Record<string, number>
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

function pick(source: Record<string, unknown>, keys: string[]): unknown {
  for (const key of keys) if (source[key] !== undefined && source[key] !== null) return source[key]
  return undefined
}

function rangeLabel(start: unknown, end: unknown): string {
  const a = num(start)
  const b = num(end)
  if (a !== null && b !== null) return `${a}–${b}`
  if (a !== null) return `${a}+`
  return String(start ?? end ?? '')
}

export function toBars(raw: unknown): Bar[] {
  if (raw === undefined || raw === null) return []
  if (isRecord(raw)) {
    const nested = pick(raw, ['histogram', 'bins', 'buckets'])
    if (nested !== undefined) return toBars(nested)
    const counts = raw.counts
    const edges = raw.edges ?? raw.bin_edges
    if (Array.isArray(counts)) {
      const labels = Array.isArray(raw.labels) ? raw.labels : null
      return counts.map((c, i) => ({
        label: labels ? String(labels[i]) : Array.isArray(edges) ? rangeLabel(edges[i], edges[i + 1]) : String(i),
        count: num(c) ?? 0,
      }))
    }
    return Object.entries(raw)
      .filter(([, v]) => num(v) !== null)
      .map(([label, v]) => ({ label, count: num(v)! }))
  }
  if (Array.isArray(raw)) {
    return raw.map((item, i) => {
      if (Array.isArray(item)) return { label: String(item[0]), count: num(item[1]) ?? 0 }
      if (isRecord(item)) {
        const count = num(pick(item, ['count', 'value', 'n'])) ?? 0
        const label = pick(item, ['label', 'key', 'turns', 'name'])
        if (label !== undefined) return { label: String(label), count }
        return {
          label: rangeLabel(pick(item, ['start', 'lo', 'min', 'from']), pick(item, ['end', 'hi', 'max', 'to'])),
          count,
        }
      }
      return { label: String(i), count: num(item) ?? 0 }
    })
  }
  return []
}

function summary(raw: unknown): Record<string, number> {
  if (!isRecord(raw)) return {}
  const out: Record<string, number> = {}
  for (const key of ['min', 'max', 'mean', 'median', 'p50', 'p95', 'p99', 'total']) {
    const value = num(raw[key])
    if (value !== null) out[key] = Math.round(value * 10) / 10
  }
  return out
}

/** Drop the empty bins after the last filled one (fixed edges reach 8k tokens). */
export function trimTrailingEmpty(bars: Bar[]): Bar[] {
  let end = bars.length
  while (end > 1 && bars[end - 1]!.count === 0) end--
  return bars.slice(0, end)
}

/** A count sent as a number, as {rows: n}, or as {field: n, ...} (summed). */
function count(raw: unknown): number | null {
  if (num(raw) !== null) return num(raw)
  if (!isRecord(raw)) return null
  if (num(raw.rows) !== null) return num(raw.rows)
  if (num(raw.count) !== null) return num(raw.count)
  return Object.values(raw).reduce<number>((sum, v) => sum + (num(v) ?? 0), 0)
}

export function statsView(raw: unknown): StatsView {
  const outer = isRecord(raw) ? raw : {}
  const s = isRecord(outer.stats) ? outer.stats : outer
  const tokens = pick(s, ['token_lengths', 'token_length', 'tokens', 'token_histogram', 'lengths'])
  const turns = pick(s, ['turns', 'turns_per_conversation', 'turn_counts', 'turns_histogram'])
  const roles = pick(s, ['roles', 'role_counts'])
  const tokenizer = pick(s, ['tokenizer']) ?? (isRecord(tokens) ? tokens.tokenizer : undefined)
  const approximate =
    pick(s, ['approximate', 'token_approximate']) ?? (isRecord(tokens) ? tokens.approximate : undefined)
  return {
    rows: num(pick(s, ['rows', 'row_count'])),
    characters: num(pick(s, ['characters', 'chars', 'total_characters'])),
    duplicates: count(pick(s, ['duplicates', 'exact_duplicates', 'duplicate_rows'])),
    empty: count(pick(s, ['empty_fields', 'empty', 'empty_rows'])),
    approximate: approximate === true || tokenizer === 'approximate' || tokenizer === 'approx',
    tokenizer: typeof tokenizer === 'string' ? tokenizer : null,
    tokenHistogram: trimTrailingEmpty(toBars(tokens)),
    turns: toBars(turns),
    roles: toBars(roles).map((bar) => ({ name: bar.label, value: bar.count })),
    tokenSummary: summary(tokens),
  }
}
