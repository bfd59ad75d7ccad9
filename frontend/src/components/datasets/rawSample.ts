/**
 * The rows of a dataset's original file, as the browser reads them (see lib/rawRows.ts): the head
 * of the file for the evidence panel, the whole file for the column mapping dialog, which sends it
 * back with the mapping as a new version.
 */
import { datasetsApi, type Dataset, type DatasetVersion } from '@/api/datasets'
import { decodeText, parseRawRows, READABLE_FILE_TYPES, type RawSample } from '@/lib/rawRows'

/** Bytes read for the evidence panel's sample: the first rows of any ordinary file. */
export const HEAD_BYTES = 256 * 1024
/** Largest original the mapping dialog holds in memory to send back (larger: re-upload it). */
export const MAX_REMAP_BYTES = 256 * 1024 * 1024

export interface OriginalRows {
  /** The version whose original file was read. */
  version: DatasetVersion
  fileType: string | null
  /** Null for a file type the browser cannot read (Parquet). */
  sample: RawSample | null
  /** The whole file, when it was asked for. */
  file: Blob | null
}

/**
 * The version that holds the rows as uploaded: the current one, else the newest version with an
 * original file (preprocessing writes only the normalized rows). `versions` are newest first.
 */
export function sourceVersion(versions: readonly DatasetVersion[], currentId: number | null): DatasetVersion | null {
  const current = versions.find((v) => v.id === currentId)
  if (current?.original_filename) return current
  return versions.find((v) => v.original_filename) ?? null
}

function stringField(record: Record<string, unknown>, key: string): string | null {
  const value = record[key]
  return typeof value === 'string' && value ? value : null
}

export async function loadOriginal(
  dataset: Dataset,
  opts: { whole: boolean; limit: number },
): Promise<OriginalRows | null> {
  const version = sourceVersion(await datasetsApi.versions(dataset.id), dataset.current_version_id)
  if (version === null) return null
  const fileType = stringField(version.detection, 'file_type')
  const readable = fileType !== null && READABLE_FILE_TYPES.includes(fileType)
  if (!readable && !opts.whole) return { version, fileType, sample: null, file: null }
  if (opts.whole && version.size_bytes > MAX_REMAP_BYTES) return { version, fileType, sample: null, file: null }
  const file = await datasetsApi.original(dataset.id, version.id, opts.whole ? undefined : HEAD_BYTES)
  // A head shorter than asked for is the whole file.
  const complete = opts.whole || file.size < HEAD_BYTES
  const sample = readable
    ? parseRawRows(
        decodeText(await file.arrayBuffer(), stringField(version.detection, 'encoding') ?? undefined),
        fileType,
        {
          complete,
          limit: opts.limit,
        },
      )
    : null
  return { version, fileType, sample, file: opts.whole ? file : null }
}
