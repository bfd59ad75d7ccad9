/**
 * The datasets API as the views use it: typed calls through the generated client, plus
 * the upload transport (XHR, for progress) that the upload task drives.
 */
import { normalizeRanges, type ByteRange } from '@/lib/upload/ranges'
import type { UploadMeta, UploadTransport } from '@/lib/upload/task'

import { api, unwrap } from './client'
import { downloadFile, fetchOk, withQuery } from './http'
import type { components } from './schema'
import { sendWithProgress } from './xhr'

type Schemas = components['schemas']
export type Dataset = Schemas['DatasetPublic']
export type DatasetFormat = Dataset['format']
export type DatasetCreated = Schemas['DatasetCreated']
export type DatasetVersion = Schemas['DatasetVersionPublic']
export type RowError = Schemas['RowErrorView']
export type PreviewRow = Schemas['PreviewRow']
export type DatasetStats = Schemas['DatasetStats']
export type PreprocessOptions = Schemas['PreprocessOptions']
export type PreprocessResult = Schemas['PreprocessResult']
export type PreprocessSample = Schemas['PreprocessSample']
export type CompareResult = Schemas['CompareResult']
export type UploadSession = Schemas['UploadPublic']
export type DatasetMapping = Schemas['DatasetMapping']
export type ImportResult = Schemas['ImportResult']
export type HubImport = Schemas['HubImport']
export type PathImport = Schemas['PathImport']

export const DATASET_FORMATS: readonly DatasetFormat[] = [
  'alpaca',
  'sharegpt',
  'messages',
  'preference',
  'kto',
  'text',
  'multiple_choice',
]
/** Formats a model trains on; multiple-choice questions only evaluate one (metric multiple_choice). */
export const TRAINING_FORMATS: readonly DatasetFormat[] = DATASET_FORMATS.filter((f) => f !== 'multiple_choice')

/** Sortable columns of the list; the server takes `-column` for descending. */
export type SortColumn = 'name' | 'created_at' | 'updated_at' | 'rows' | 'size_bytes' | 'format'

export interface ListQuery {
  q?: string
  format?: DatasetFormat
  sort: SortColumn
  descending: boolean
  page: number
  page_size: number
}

/** How many rows a dry run shows before/after. */
export const DRY_RUN_ROWS = 10

const byId = (dataset_id: number) => ({ params: { path: { dataset_id } } })

export const datasetsApi = {
  async list(query: ListQuery) {
    const { sort, descending, ...rest } = query
    return unwrap(
      await api.GET('/api/datasets', { params: { query: { ...rest, sort: `${descending ? '-' : ''}${sort}` } } }),
    )
  },
  async get(id: number) {
    return unwrap(await api.GET('/api/datasets/{dataset_id}', byId(id)))
  },
  async update(id: number, body: { name?: string; description?: string }) {
    return unwrap(await api.PATCH('/api/datasets/{dataset_id}', { ...byId(id), body }))
  },
  async remove(id: number) {
    unwrap(await api.DELETE('/api/datasets/{dataset_id}', byId(id)))
  },
  async importSample() {
    return unwrap(await api.POST('/api/datasets/samples/forge-demo'))
  },
  async preview(id: number, query: { page: number; page_size: number; q?: string; version?: number }) {
    return unwrap(await api.GET('/api/datasets/{dataset_id}/preview', { params: { path: { dataset_id: id }, query } }))
  },
  async stats(id: number, version?: number) {
    return unwrap(
      await api.GET('/api/datasets/{dataset_id}/stats', { params: { path: { dataset_id: id }, query: { version } } }),
    )
  },
  async versions(id: number) {
    return unwrap(await api.GET('/api/datasets/{dataset_id}/versions', byId(id)))
  },
  async rollback(versionId: number, message = '') {
    return unwrap(
      await api.POST('/api/datasets/versions/{version_id}/rollback', {
        params: { path: { version_id: versionId } },
        body: { message },
      }),
    )
  },
  /** Rows added, removed and changed from version `a` to version `b` (version ids). */
  async compare(id: number, a: number, b: number, samples = 5) {
    return unwrap(
      await api.GET('/api/datasets/{dataset_id}/compare', {
        params: { path: { dataset_id: id }, query: { a, b, samples } },
      }),
    )
  },
  async preprocess(id: number, options: PreprocessOptions, dryRun: boolean, message = '') {
    return unwrap(
      await api.POST('/api/datasets/{dataset_id}/preprocess', {
        ...byId(id),
        body: { options, dry_run: dryRun, dry_run_rows: DRY_RUN_ROWS, message },
      }),
    )
  },
  /** Download the original upload, or with `normalized` the JSONL the trainer reads. */
  async download(id: number, fallbackName: string, opts: { version?: number; normalized?: boolean } = {}) {
    const query = { version: opts.version, normalized: opts.normalized ? 'true' : undefined }
    await downloadFile(withQuery(`/api/datasets/${id}/download`, query), fallbackName)
  },
  /** A version's original file; with `headBytes`, only its first bytes (a range request). */
  async original(id: number, versionId: number, headBytes?: number): Promise<Blob> {
    const init = headBytes ? { headers: { Range: `bytes=0-${headBytes - 1}` } } : {}
    return (await fetchOk(withQuery(`/api/datasets/${id}/download`, { version: versionId }), init)).blob()
  },
  /** A new version from a file, read with an optional format and column mapping (multipart). */
  async createVersion(
    id: number,
    file: Blob,
    filename: string,
    opts: { format?: DatasetFormat; mapping?: DatasetMapping; message?: string } = {},
  ): Promise<DatasetCreated> {
    const form = new FormData()
    form.append('file', file, filename)
    if (opts.format) form.append('format', opts.format)
    if (opts.mapping) form.append('mapping', JSON.stringify(opts.mapping))
    if (opts.message) form.append('message', opts.message)
    const response = await fetchOk(`/api/datasets/${id}/versions`, { method: 'POST', body: form })
    return (await response.json()) as DatasetCreated
  },
  /** The entries of a dataset_info.json, with the data files they name attached. */
  async importDatasetInfo(info: File, files: File[], names?: string[]): Promise<ImportResult> {
    const form = new FormData()
    form.append('dataset_info', info, info.name)
    for (const file of files) form.append('files', file, file.name)
    if (names && names.length > 0) form.append('names', names.join(','))
    const response = await fetchOk('/api/datasets/import/dataset-info', { method: 'POST', body: form })
    return (await response.json()) as ImportResult
  },
  async importPath(body: PathImport) {
    return unwrap(await api.POST('/api/datasets/import/path', { body }))
  },
  async importHub(body: HubImport) {
    return unwrap(await api.POST('/api/datasets/import/hub', { body }))
  },
}

/** The real upload transport: multipart for small files, the resumable session for large ones. */
export const datasetUploadTransport: UploadTransport<Dataset> = {
  async uploadSmall(file, filename, meta: UploadMeta, hooks) {
    const form = new FormData()
    form.append('file', file, filename)
    if (meta.name) form.append('name', meta.name)
    if (meta.description) form.append('description', meta.description)
    if (meta.format) form.append('format', meta.format)
    const created = await sendWithProgress<DatasetCreated>({
      method: 'POST',
      url: '/api/datasets',
      body: form,
      ...hooks,
    })
    return created.dataset
  },
  async createSession(input, signal) {
    const session = unwrap(
      await api.POST('/api/datasets/uploads', {
        body: {
          filename: input.filename,
          size: input.size,
          sha256: input.sha256,
          name: input.meta.name || null,
          description: input.meta.description,
          format: (input.meta.format || null) as DatasetFormat | null,
          txt_mode: 'lines',
          message: '',
        },
        signal,
      }),
    )
    return { id: session.id, chunkSize: session.chunk_size, maxChunkSize: session.max_chunk_bytes }
  },
  async putChunk(sessionId, offset, data, hooks) {
    await sendWithProgress<UploadSession>({
      method: 'PUT',
      url: `/api/datasets/uploads/${encodeURIComponent(sessionId)}/chunks?offset=${offset}`,
      body: data,
      headers: { 'Content-Type': 'application/octet-stream' },
      ...hooks,
    })
  },
  async missing(sessionId, signal): Promise<ByteRange[]> {
    const session = unwrap(
      await api.GET('/api/datasets/uploads/{upload_id}', { params: { path: { upload_id: sessionId } }, signal }),
    )
    return normalizeRanges(session.missing, session.size)
  },
  async complete(sessionId, signal) {
    const created = unwrap(
      await api.POST('/api/datasets/uploads/{upload_id}/complete', {
        params: { path: { upload_id: sessionId } },
        signal,
      }),
    )
    return created.dataset
  },
  async abort(sessionId) {
    unwrap(await api.DELETE('/api/datasets/uploads/{upload_id}', { params: { path: { upload_id: sessionId } } }))
  },
}
