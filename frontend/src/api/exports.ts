/**
 * The export API as the Export dialog uses it: which formats and quantizations this server can write
 * (with the reason for those it cannot), the estimated file size and memory to run a choice, starting
 * an export (a queued job that makes a new version), and downloading one file of a version (the
 * route serves HTTP Range, so a browser or `curl -C -` resumes a dropped download).
 *
 * Calls go through the typed client. The server describes a version's `verification` only in prose
 * (a JSON column copied from the engine's export.json): `ExportVerification` gives it that shape.
 */
import type { ExportFormatName } from '@/lib/exportCommands'

import { api, unwrap } from './client'
import { downloadFile } from './http'
import type { components } from './schema'

type Schemas = components['schemas']

export type ExportFormat = Schemas['FormatChoice']['name'] & ExportFormatName
/** A version's `format`: what its files are (trained and merged weights are safetensors). */
export type VersionFormat = Schemas['ModelVersionPublic']['format']

/** The formats in the order the dialog offers them. */
export const EXPORT_FORMATS: readonly ExportFormat[] = ['gguf', 'gguf_lora', 'ollama', 'onnx', 'merged']

export type QuantizationOption = Schemas['QuantizationChoice']
export type FormatOption = Schemas['FormatChoice']
export type ExportFormats = Schemas['ExportFormats']
export type ExportEstimate = Schemas['ExportEstimate']
export type ExportRequest = Schemas['ExportCreate']
export type ExportStarted = Schemas['ExportStarted']
export type ExportFile = Schemas['ExportFile']
/** What an export version was asked for and produced (its files, the name its commands use). */
export type VersionExport = Schemas['VersionExport']

/** Push a version's files to a hub repository; the token is used for this call only. */
export type PushRequest = Schemas['PushCreate']
/** Where the files went: the repository, the commit that added them, how many files were sent. */
export type PushResult = Schemas['PushResult']
/** The hubs a version can be pushed to. */
export type PushHub = PushRequest['hub']

/** export.json's `verification`: the file read back and a fixed prompt compared with the source. */
export interface ExportVerification {
  ok: boolean
  /** What read it back (transformers-gguf, onnxruntime-genai, llama.cpp); empty when skipped. */
  reader: string
  prompt: string
  tokens_compared: number
  /** 0–1: the share of greedy tokens equal to the source model's. */
  agreement: number
  identical: boolean
  detail: string
}

/** The export columns of a version, `verification` given its documented shape. */
export interface ExportFields {
  format?: VersionFormat | null
  quantization?: string | null
  sha256?: string | null
  verification?: ExportVerification | null
  export?: VersionExport | null
}

const byVersion = (version_id: number) => ({ path: { version_id } })

export const exportsApi = {
  async formats(): Promise<ExportFormats> {
    return unwrap(await api.GET('/api/exports/formats'))
  },
  async estimate(versionId: number, format: ExportFormat, quantization: string | null): Promise<ExportEstimate> {
    const query = quantization ? { format, quantization } : { format }
    return unwrap(
      await api.GET('/api/models/versions/{version_id}/exports/estimate', {
        params: { ...byVersion(versionId), query },
      }),
    )
  },
  async start(versionId: number, body: ExportRequest): Promise<ExportStarted> {
    return unwrap(await api.POST('/api/models/versions/{version_id}/exports', { params: byVersion(versionId), body }))
  },
  /** Uploads can take minutes: the call answers when the hub has the commit. */
  async push(versionId: number, body: PushRequest): Promise<PushResult> {
    return unwrap(await api.POST('/api/models/versions/{version_id}/push', { params: byVersion(versionId), body }))
  },
  fileUrl(versionId: number, name: string): string {
    return `/api/models/versions/${versionId}/files/${encodeURIComponent(name)}`
  },
  downloadFile(versionId: number, name: string): Promise<void> {
    return downloadFile(exportsApi.fileUrl(versionId, name), name)
  },
}
