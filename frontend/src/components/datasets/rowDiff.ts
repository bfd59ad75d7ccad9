/**
 * What changed between two versions of one row: its fields side by side, the changed ones with a
 * word-level diff (Chinese and Japanese characters count one by one, as they carry no spaces),
 * the unchanged ones apart so that the view can fold them away.
 */

export interface DiffPart {
  kind: 'same' | 'removed' | 'added'
  text: string
}

export interface FieldDiff {
  /** Where the value sits in the row: `system`, `prompt[0] user`, `response[1] assistant`, `label`… */
  field: string
  before: string | null
  after: string | null
  /** The diff of before → after; for an unchanged field, one `same` part. */
  parts: DiffPart[]
}

export interface RowDiff {
  changed: FieldDiff[]
  unchanged: FieldDiff[]
}

// Past this many token pairs the diff stops looking for common words inside the changed middle and
// shows it as removed then added: a 4M-cell table is the most a browser tab should build per field.
const MAX_CELLS = 4_000_000

// Han, Hiragana and Katakana are written without spaces: each character is a token of its own.
const CJK = '\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}'
const TOKEN = new RegExp(`\\s+|[${CJK}]|(?:(?![${CJK}])[\\p{L}\\p{N}\\p{M}_])+|[\\s\\S]`, 'gu')

/** Words, runs of whitespace, single CJK characters and single other characters. */
export function tokenize(text: string): string[] {
  return text.match(TOKEN) ?? []
}

function push(parts: DiffPart[], kind: DiffPart['kind'], text: string): void {
  if (!text) return
  const last = parts[parts.length - 1]
  if (last && last.kind === kind) last.text += text
  else parts.push({ kind, text })
}

/** The longest common subsequence of `a` and `b` as diff parts (removed before added in a change). */
function middle(a: string[], b: string[], parts: DiffPart[]): void {
  const n = a.length
  const m = b.length
  if (n === 0 || m === 0 || n * m > MAX_CELLS) {
    push(parts, 'removed', a.join(''))
    push(parts, 'added', b.join(''))
    return
  }
  // lengths[i * (m + 1) + j]: LCS length of a[i:] and b[j:].
  const lengths = new Uint32Array((n + 1) * (m + 1))
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lengths[i * (m + 1) + j] =
        a[i] === b[j]
          ? lengths[(i + 1) * (m + 1) + j + 1]! + 1
          : Math.max(lengths[(i + 1) * (m + 1) + j]!, lengths[i * (m + 1) + j + 1]!)
    }
  }
  let i = 0
  let j = 0
  let removed = ''
  let added = ''
  const flush = (): void => {
    push(parts, 'removed', removed)
    push(parts, 'added', added)
    removed = ''
    added = ''
  }
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      flush()
      push(parts, 'same', a[i]!)
      i++
      j++
    } else if (lengths[(i + 1) * (m + 1) + j]! >= lengths[i * (m + 1) + j + 1]!) {
      removed += a[i++]
    } else {
      added += b[j++]
    }
  }
  removed += a.slice(i).join('')
  added += b.slice(j).join('')
  flush()
}

/** A word-level diff of two texts: joining the `same` and `removed` parts gives `before`, the
 * `same` and `added` parts `after`. */
export function diffText(before: string, after: string): DiffPart[] {
  if (before === after) return before ? [{ kind: 'same', text: before }] : []
  const a = tokenize(before)
  const b = tokenize(after)
  let start = 0
  while (start < a.length && start < b.length && a[start] === b[start]) start++
  let end = 0
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++
  const parts: DiffPart[] = []
  push(parts, 'same', a.slice(0, start).join(''))
  middle(a.slice(start, a.length - end), b.slice(start, b.length - end), parts)
  push(parts, 'same', a.slice(a.length - end).join(''))
  return parts
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** The row's leaves by field name; a turn ({role, content}) is one field named by its place and
 * role, a list of plain values (token ids) one field. */
function fields(value: unknown, prefix: string, out: Map<string, string>): void {
  if (Array.isArray(value) && prefix && value.every((item) => typeof item !== 'object' || item === null)) {
    out.set(prefix, JSON.stringify(value))
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => {
      if (isRecord(item) && typeof item.content === 'string' && typeof item.role === 'string') {
        out.set(`${prefix}[${i}] ${item.role}`, item.content)
      } else {
        fields(item, `${prefix}[${i}]`, out)
      }
    })
  } else if (isRecord(value)) {
    for (const [key, inner] of Object.entries(value)) {
      // The row number is how the two sides were matched: the same on both.
      if (prefix === '' && key === 'row') continue
      fields(inner, prefix ? `${prefix}.${key}` : key, out)
    }
  } else if (value !== null && value !== undefined && prefix) {
    out.set(prefix, text(value))
  }
}

/** Compare two versions of a row field by field. */
export function diffRow(before: unknown, after: unknown): RowDiff {
  const a = new Map<string, string>()
  const b = new Map<string, string>()
  fields(before, '', a)
  fields(after, '', b)
  const names = [...a.keys(), ...[...b.keys()].filter((k) => !a.has(k))]
  const result: RowDiff = { changed: [], unchanged: [] }
  for (const field of names) {
    const old = a.get(field) ?? null
    const now = b.get(field) ?? null
    const entry = { field, before: old, after: now, parts: diffText(old ?? '', now ?? '') }
    if (old === now) result.unchanged.push(entry)
    else result.changed.push(entry)
  }
  return result
}
