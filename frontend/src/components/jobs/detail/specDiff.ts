/**
 * Key-level views of job specs: flatten nested keys to dotted paths, diff two or more specs, and
 * render a spec as readable YAML-like text (for display; the download uses the server's YAML).
 */
export type Spec = Record<string, unknown>

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** {"a": {"b": 1}, "c": [1, 2]} → {"a.b": 1, "c": [1, 2]} (lists stay whole: one key, one value). */
export function flatten(spec: Spec, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(spec)) {
    const path = prefix ? `${prefix}.${key}` : key
    if (isPlainObject(value) && Object.keys(value).length > 0) Object.assign(out, flatten(value, path))
    else out[path] = value
  }
  return out
}

/** One value as short text: strings bare, everything else as JSON; absent as "". */
export function showValue(value: unknown): string {
  if (value === undefined) return ''
  if (typeof value === 'string') return value
  return JSON.stringify(value)
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

export type DiffKind = 'same' | 'changed' | 'added' | 'removed'
export interface DiffRow {
  key: string
  left: unknown
  right: unknown
  kind: DiffKind
}

/** Every key of both specs, sorted, with what changed from `left` to `right`. */
export function diffSpecs(left: Spec, right: Spec): DiffRow[] {
  const a = flatten(left)
  const b = flatten(right)
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
  return keys.map((key) => {
    const inA = key in a
    const inB = key in b
    const kind: DiffKind = !inA ? 'added' : !inB ? 'removed' : same(a[key], b[key]) ? 'same' : 'changed'
    return { key, left: a[key], right: b[key], kind }
  })
}

/** A unified, line-per-key diff: "  key: v" unchanged, "- key: old" / "+ key: new" for changes. */
export function unifiedLines(rows: readonly DiffRow[]): { sign: ' ' | '-' | '+'; text: string }[] {
  const out: { sign: ' ' | '-' | '+'; text: string }[] = []
  for (const row of rows) {
    if (row.kind === 'same') out.push({ sign: ' ', text: `${row.key}: ${showValue(row.left)}` })
    if (row.kind === 'changed' || row.kind === 'removed')
      out.push({ sign: '-', text: `${row.key}: ${showValue(row.left)}` })
    if (row.kind === 'changed' || row.kind === 'added')
      out.push({ sign: '+', text: `${row.key}: ${showValue(row.right)}` })
  }
  return out
}

export interface MultiDiffRow {
  key: string
  values: unknown[]
  differs: boolean
}

/** The keys of several specs side by side; `differs` when any two values (or presences) disagree. */
export function multiDiff(specs: readonly Spec[]): MultiDiffRow[] {
  const flat = specs.map((s) => flatten(s))
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort()
  return keys.map((key) => {
    const values = flat.map((f) => f[key])
    const first = JSON.stringify(values[0] ?? null) + String(key in flat[0]!)
    const differs = flat.some((f, i) => JSON.stringify(values[i] ?? null) + String(key in f) !== first)
    return { key, values, differs }
  })
}

function scalar(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'string') {
    // Quote what YAML would read as something else (numbers, booleans, empty, leading symbols).
    return /^[\w./@+-][\w ./@+:-]*$/.test(value) &&
      !/: |:$| $/.test(value) &&
      !/^(true|false|null|yes|no|on|off|~|[-+]?[\d.]+(e[-+]?\d+)?)$/i.test(value)
      ? value
      : JSON.stringify(value)
  }
  return JSON.stringify(value)
}

/** A readable YAML-style rendering (sorted keys as the spec stores them, nested maps indented). */
export function toYamlText(spec: Spec, indent = 0): string {
  const pad = '  '.repeat(indent)
  const lines: string[] = []
  for (const [key, value] of Object.entries(spec)) {
    if (isPlainObject(value) && Object.keys(value).length > 0) {
      lines.push(`${pad}${key}:`)
      lines.push(toYamlText(value, indent + 1))
    } else if (Array.isArray(value) && value.length > 0 && value.every((v) => !isPlainObject(v) && !Array.isArray(v))) {
      lines.push(`${pad}${key}:`)
      for (const item of value) lines.push(`${pad}  - ${scalar(item)}`)
    } else {
      lines.push(
        `${pad}${key}: ${isPlainObject(value) || Array.isArray(value) ? JSON.stringify(value) : scalar(value)}`,
      )
    }
  }
  return lines.join('\n')
}
