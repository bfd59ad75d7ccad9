/**
 * The entries of a LLaMA-Factory `dataset_info.json`, read in the browser before the import so the
 * dialog can list them, say which data file each needs and whether it is attached. The server
 * parses the file again and has the last word (it skips hub entries and entries without a file).
 */

export type EntryStatus = 'attached' | 'missing' | 'hub'

export interface InfoEntry {
  name: string
  fileName: string | null
  status: EntryStatus
}

/** The last path segment, as the server matches attached files by name. */
export function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path
}

/** Entries in file order, or null when the text is not a JSON object of objects. */
export function infoEntries(text: string, attached: readonly string[]): InfoEntry[] | null {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null
  const names = new Set(attached.map(baseName))
  const entries: InfoEntry[] = []
  for (const [name, entry] of Object.entries(data as Record<string, unknown>)) {
    if (typeof entry !== 'object' || entry === null) return null
    const fileName = (entry as Record<string, unknown>).file_name
    if (typeof fileName !== 'string') entries.push({ name, fileName: null, status: 'hub' })
    else entries.push({ name, fileName, status: names.has(baseName(fileName)) ? 'attached' : 'missing' })
  }
  return entries
}
