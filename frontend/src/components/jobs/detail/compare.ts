/** The comparison page's URL: `?ids=1,2,3`. */

/** "1,2,x,2" → [1, 2]: ids as the URL gives them, invalid and repeated ones dropped. */
export function parseIds(raw: unknown): number[] {
  const text = Array.isArray(raw) ? raw.join(',') : typeof raw === 'string' ? raw : ''
  const ids = text
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((v) => Number.isInteger(v) && v > 0)
  return [...new Set(ids)]
}
