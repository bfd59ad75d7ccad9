/**
 * Handing the browser a file. The one place that makes a temporary object URL, clicks a hidden
 * link and revokes the URL afterwards; the API modules fetch (with the access token: a plain link
 * would arrive without it) and pass the response here.
 */

/** How long the object URL outlives the click (the browser may start the download late). */
export const REVOKE_AFTER_MS = 10_000

/** The file name a Content-Disposition header suggests (RFC 5987 `filename*` first). */
export function filenameOf(header: string | null): string | null {
  if (!header) return null
  const extended = /filename\*=(?:UTF-8'')?([^;]+)/i.exec(header)
  if (extended?.[1]) {
    try {
      return decodeURIComponent(extended[1].trim().replace(/^"|"$/g, ''))
    } catch {
      // fall through to the plain form
    }
  }
  const plain = /filename="?([^";]+)"?/i.exec(header)
  return plain?.[1]?.trim() || null
}

/** Save a blob under `filename` (the browser's download prompt or folder). */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob)
  const link = document.createElement('a')
  link.href = url
  link.download = filename
  document.body.appendChild(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), REVOKE_AFTER_MS)
}

/** Save a text (an export, a YAML spec) as a file. */
export function saveText(text: string, filename: string, type = 'text/plain'): void {
  saveBlob(new Blob([text], { type }), filename)
}

/** Save a fetched file under the name its Content-Disposition gives, else `fallbackName`. */
export async function saveResponse(response: Response, fallbackName: string): Promise<void> {
  const blob = await response.blob()
  saveBlob(blob, filenameOf(response.headers.get('Content-Disposition')) ?? fallbackName)
}
