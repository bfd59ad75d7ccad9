/** How the upload task and the UI read a failed request. */
import { asApiError } from '@/api/errors'

/** What the UI shows for an upload error: an i18n key, or null to use the server's text. */
export function uploadErrorKey(err: unknown): string | null {
  const e = asApiError(err)
  if (e.status === 0) return 'datasets.upload.errors.network'
  if (e.status === 413) return 'datasets.upload.errors.tooLarge'
  if (e.status === 507 || /disk|storage|space/i.test(e.code)) return 'datasets.upload.errors.diskFull'
  if (/hash|checksum|sha256/i.test(e.code)) return 'datasets.upload.errors.hashMismatch'
  if (e.status === 404 && /upload|session/i.test(e.code)) return 'datasets.upload.errors.sessionGone'
  return null
}

/** Whether a failure is worth retrying the same chunk for (network, timeouts, 5xx but 507). */
export function isTransient(err: unknown): boolean {
  const e = asApiError(err)
  return e.status === 0 || e.status === 408 || e.status === 429 || (e.status >= 500 && e.status !== 507)
}
