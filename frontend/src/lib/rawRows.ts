/**
 * The first rows of a dataset's original file, read in the browser: enough to list its columns,
 * show a raw row next to the detection evidence and preview a column mapping before the server
 * re-reads the whole file. Follows the server's readers (datastore/reading.py) for the text
 * formats: JSONL (row = line), a JSON array or an object holding one list of rows (row = record),
 * CSV/TSV with a header (row = record) and TXT (one `text` per line). Parquet is binary: not read.
 *
 * The text may be only the head of the file (a range request); `complete: false` then drops the
 * last, possibly cut, row instead of reporting it as broken.
 */

export type RawRow = Record<string, unknown>

export interface RawSample {
  rows: { row: number; data: RawRow }[]
  /** Every key seen in the rows, in order of first appearance. */
  columns: string[]
}

/** File types whose rows the browser can read. */
export const READABLE_FILE_TYPES: readonly string[] = ['jsonl', 'json', 'csv', 'tsv', 'txt']

function isRecord(value: unknown): value is RawRow {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The server's `as_row`: objects stay, a bare string becomes `{text}`, anything else is no row. */
function asRow(value: unknown): RawRow | null {
  if (isRecord(value)) return value
  if (typeof value === 'string') return { text: value }
  return null
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

function jsonlRows(text: string, complete: boolean, limit: number): RawSample['rows'] {
  const lines = text.split('\n')
  if (!complete) lines.pop()
  const rows: RawSample['rows'] = []
  for (let i = 0; i < lines.length && rows.length < limit; i++) {
    const line = lines[i]!.trim()
    if (!line) continue
    const data = asRow(parseJson(line))
    if (data) rows.push({ row: i + 1, data })
  }
  return rows
}

const SCALAR_END = /[,\]]/g

/**
 * The elements of the array that starts at `start`, sliced by bracket depth so that a head cut
 * inside element N still yields elements 1..N-1.
 */
function arrayElements(text: string, start: number, limit: number): unknown[] {
  const values: unknown[] = []
  let depth = 0
  let inString = false
  let escaped = false
  let elementStart = -1
  for (let i = start; i < text.length && values.length < limit; i++) {
    const c = text[i]!
    if (inString) {
      if (escaped) escaped = false
      else if (c === '\\') escaped = true
      else if (c === '"') {
        inString = false
        // A bare string element ends here.
        if (depth === 1 && elementStart >= 0) {
          values.push(parseJson(text.slice(elementStart, i + 1)))
          elementStart = -1
        }
      }
      continue
    }
    if (c === '"') {
      inString = true
      if (depth === 1 && elementStart < 0) elementStart = i
    } else if (c === '[' || c === '{') {
      depth++
      if (depth === 2 && elementStart < 0) elementStart = i
    } else if (c === ']' || c === '}') {
      depth--
      if (depth === 1 && elementStart >= 0) {
        values.push(parseJson(text.slice(elementStart, i + 1)))
        elementStart = -1
      }
      if (depth === 0) break
    } else if (depth === 1 && elementStart < 0 && c !== ',' && !/\s/.test(c)) {
      // A number, true, false or null: no row, but it still counts as a record.
      SCALAR_END.lastIndex = i
      const end = SCALAR_END.exec(text)?.index ?? -1
      if (end < 0) break
      values.push(parseJson(text.slice(i, end)))
      i = end - 1
    }
  }
  return values
}

function jsonRows(text: string, complete: boolean, limit: number): RawSample['rows'] {
  const start = text.search(/\S/)
  if (start < 0) return []
  let values: unknown[]
  if (text[start] === '[') {
    values = arrayElements(text, start, limit)
  } else if (complete) {
    const whole = parseJson(text)
    if (!isRecord(whole)) return []
    const lists = Object.values(whole).filter((v) => Array.isArray(v) && v.length > 0 && isRecord(v[0]))
    values = lists.length === 1 ? (lists[0] as unknown[]) : [whole]
  } else {
    return []
  }
  const rows: RawSample['rows'] = []
  values.slice(0, limit).forEach((value, i) => {
    const data = asRow(value)
    if (data) rows.push({ row: i + 1, data })
  })
  return rows
}

/** RFC 4180 records (quoted fields may hold the delimiter, quotes and newlines). */
export function csvRecords(text: string, delimiter: string, complete: boolean, limit: number): string[][] {
  const records: string[][] = []
  let record: string[] = []
  let field = ''
  let quoted = false
  let i = 0
  while (i < text.length && records.length < limit) {
    const c = text[i]!
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"'
        i += 2
        continue
      }
      if (c === '"') quoted = false
      else field += c
      i++
      continue
    }
    if (c === '"' && field === '') quoted = true
    else if (c === delimiter) {
      record.push(field)
      field = ''
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++
      record.push(field)
      if (record.length > 1 || record[0] !== '') records.push(record)
      record = []
      field = ''
    } else field += c
    i++
  }
  // What is left after the last newline is a whole record only when the text is the whole file.
  if (complete && !quoted && records.length < limit && (field !== '' || record.length > 0)) {
    record.push(field)
    records.push(record)
  }
  return records
}

function delimitedRows(text: string, delimiter: string, complete: boolean, limit: number): RawSample['rows'] {
  const [header, ...records] = csvRecords(text, delimiter, complete, limit + 1)
  if (!header) return []
  return records
    .filter((values) => values.length === header.length)
    .map((values, i) => ({ row: i + 1, data: Object.fromEntries(header.map((name, j) => [name, values[j]])) }))
}

function textRows(text: string, complete: boolean, limit: number): RawSample['rows'] {
  const lines = text.split('\n')
  if (!complete) lines.pop()
  const rows: RawSample['rows'] = []
  for (let i = 0; i < lines.length && rows.length < limit; i++) {
    const line = lines[i]!.replace(/\r$/, '')
    if (line.trim()) rows.push({ row: i + 1, data: { text: line } })
  }
  return rows
}

/** Every key of `rows`, in order of first appearance. */
export function columnsOf(rows: readonly { data: RawRow }[]): string[] {
  const seen = new Set<string>()
  for (const { data } of rows) for (const key of Object.keys(data)) seen.add(key)
  return [...seen]
}

/** Up to `limit` rows of a file's text, or null for a file type the browser cannot read. */
export function parseRawRows(
  text: string,
  fileType: string,
  opts: { complete: boolean; limit: number },
): RawSample | null {
  const body = text.replace(/^\uFEFF/, '')
  const { complete, limit } = opts
  let rows: RawSample['rows']
  if (fileType === 'jsonl') rows = jsonlRows(body, complete, limit)
  else if (fileType === 'json') rows = jsonRows(body, complete, limit)
  else if (fileType === 'csv') rows = delimitedRows(body, ',', complete, limit)
  else if (fileType === 'tsv') rows = delimitedRows(body, '\t', complete, limit)
  else if (fileType === 'txt') rows = textRows(body, complete, limit)
  else return null
  return { rows, columns: columnsOf(rows) }
}

/** Bytes → text in the encoding the server detected (e.g. GBK); unknown labels fall back to UTF-8. */
export function decodeText(bytes: ArrayBuffer, encoding: string | undefined): string {
  try {
    return new TextDecoder(encoding || 'utf-8').decode(bytes)
  } catch {
    return new TextDecoder('utf-8').decode(bytes)
  }
}
