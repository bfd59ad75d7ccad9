/**
 * The detection evidence the server keeps with each version (datastore/detect.py): how many rows
 * it sampled, how many looked like each format, which known keys it saw, the file's type and
 * encoding, and whether the format was detected, chosen by the uploader or given by a mapping.
 * This turns that loose JSON into what the evidence panel shows.
 */

export type DetectionSource = 'detected' | 'override' | 'mapping' | 'unknown'

export interface FormatVote {
  format: string
  rows: number
  /** 1-based row of the file where the first row of this format was seen. */
  firstRow: number | null
}

export interface DetectionView {
  source: DetectionSource
  sampledRows: number
  votes: FormatVote[]
  /** Share of the sampled rows that look like the dataset's format (0..1), or null without a sample. */
  confidence: number | null
  matchedKeys: string[]
  fileType: string | null
  encoding: string | null
  notes: string[]
  /** The first row of the dataset's format, to show as the sample. */
  sampleRow: number | null
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function numberOr(value: unknown, fallback: number | null): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback
}

function stringOr(value: unknown): string | null {
  return typeof value === 'string' && value ? value : null
}

const SOURCES: readonly DetectionSource[] = ['detected', 'override', 'mapping']

export function detectionView(detection: unknown, format: string): DetectionView {
  const raw = isRecord(detection) ? detection : {}
  const votesRaw = isRecord(raw.votes) ? raw.votes : {}
  const firsts = isRecord(raw.first_row_of) ? raw.first_row_of : {}
  const votes = Object.entries(votesRaw)
    .map(([name, rows]) => ({ format: name, rows: numberOr(rows, 0)!, firstRow: numberOr(firsts[name], null) }))
    .sort((a, b) => b.rows - a.rows || a.format.localeCompare(b.format))
  const sampledRows = numberOr(raw.sampled_rows, 0)!
  const own = votes.find((v) => v.format === format)
  const source = SOURCES.find((s) => s === raw.source) ?? 'unknown'
  return {
    source,
    sampledRows,
    votes,
    confidence: sampledRows > 0 ? (own?.rows ?? 0) / sampledRows : null,
    matchedKeys: Array.isArray(raw.matched_keys)
      ? raw.matched_keys.filter((k): k is string => typeof k === 'string')
      : [],
    fileType: stringOr(raw.file_type),
    encoding: stringOr(raw.encoding),
    notes: Array.isArray(raw.notes) ? raw.notes.filter((n): n is string => typeof n === 'string') : [],
    sampleRow: own?.firstRow ?? votes[0]?.firstRow ?? null,
  }
}

// LLaMA-Factory's default columns per formatting (engine/data/registry.py): the mapping records
// only the columns that differ from them.
const DEFAULT_COLUMNS: Record<string, Record<string, string>> = {
  alpaca: { prompt: 'instruction', query: 'input', response: 'output' },
  sharegpt: { messages: 'conversations' },
  openai: { messages: 'messages' },
}

/** The columns a version was read with, role → column: the mapping's over the defaults of its formatting. */
export function mappedColumns(mapping: unknown): [string, string][] {
  const raw = isRecord(mapping) ? mapping : {}
  const columns = isRecord(raw.columns) ? raw.columns : {}
  const defaults = { ...(typeof raw.formatting === 'string' ? DEFAULT_COLUMNS[raw.formatting] : {}) }
  // A preference pair's answers come from chosen/rejected, never from the output column.
  if (raw.ranking === true) delete defaults.response
  return Object.entries({ ...defaults, ...columns }).filter(
    (entry): entry is [string, string] => typeof entry[1] === 'string',
  )
}
