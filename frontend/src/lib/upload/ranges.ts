/** Byte ranges of an upload: what to send, what the server still lacks. */

/** A half-open byte range [start, end). */
export interface ByteRange {
  start: number
  end: number
}

/** Cut [0, size) into consecutive chunks of at most `chunkSize` bytes. */
export function planChunks(size: number, chunkSize: number): ByteRange[] {
  return splitRanges([{ start: 0, end: size }], chunkSize)
}

/** Cut each range into pieces of at most `chunkSize` bytes, keeping their order. */
export function splitRanges(ranges: readonly ByteRange[], chunkSize: number): ByteRange[] {
  if (!(chunkSize > 0)) throw new RangeError('chunkSize must be positive')
  const out: ByteRange[] = []
  for (const range of ranges) {
    for (let start = range.start; start < range.end; start += chunkSize) {
      out.push({ start, end: Math.min(start + chunkSize, range.end) })
    }
  }
  return out
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * The server's missing ranges, whatever their spelling ([start, end] pairs or
 * {start, end} / {offset, length} objects), clamped to [0, size), sorted and merged.
 */
export function normalizeRanges(raw: unknown, size: number): ByteRange[] {
  const list = Array.isArray(raw) ? raw : []
  const ranges: ByteRange[] = []
  for (const item of list) {
    let start: number | undefined
    let end: number | undefined
    if (Array.isArray(item) && item.length >= 2) {
      start = Number(item[0])
      end = Number(item[1])
    } else if (isRecord(item)) {
      start = Number(item.start ?? item.offset)
      end = item.end !== undefined ? Number(item.end) : start + Number(item.length)
    }
    if (start === undefined || end === undefined || !Number.isFinite(start) || !Number.isFinite(end)) continue
    start = Math.max(0, start)
    end = Math.min(size, end)
    if (end > start) ranges.push({ start, end })
  }
  ranges.sort((a, b) => a.start - b.start)
  const merged: ByteRange[] = []
  for (const range of ranges) {
    const last = merged[merged.length - 1]
    if (last && range.start <= last.end) last.end = Math.max(last.end, range.end)
    else merged.push({ ...range })
  }
  return merged
}

export function rangeBytes(ranges: readonly ByteRange[]): number {
  return ranges.reduce((sum, r) => sum + (r.end - r.start), 0)
}
