/** Log search and the arithmetic of the virtualised log viewer (pure, unit-tested). */

/** Indices of lines containing `query` (case-insensitive); every index when the query is empty. */
export function matchingLines(lines: readonly string[], query: string): number[] {
  const q = query.trim().toLowerCase()
  const out: number[] = []
  for (let i = 0; i < lines.length; i++) if (!q || lines[i]!.toLowerCase().includes(q)) out.push(i)
  return out
}

export interface Segment {
  text: string
  hit: boolean
}

/** A line cut into plain and matching pieces, for highlighting without v-html (no markup injection). */
export function highlight(line: string, query: string): Segment[] {
  const q = query.trim().toLowerCase()
  if (!q) return [{ text: line, hit: false }]
  const lower = line.toLowerCase()
  const out: Segment[] = []
  let from = 0
  for (let at = lower.indexOf(q); at >= 0; at = lower.indexOf(q, from)) {
    if (at > from) out.push({ text: line.slice(from, at), hit: false })
    out.push({ text: line.slice(at, at + q.length), hit: true })
    from = at + q.length
  }
  if (from < line.length) out.push({ text: line.slice(from), hit: false })
  return out
}

/** Which rows to render for a scroll position: the visible ones plus `overscan` on each side. */
export function visibleWindow(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  total: number,
  overscan = 20,
): { start: number; end: number } {
  const first = Math.floor(Math.max(scrollTop, 0) / rowHeight)
  const count = Math.ceil(Math.max(viewportHeight, rowHeight) / rowHeight)
  return { start: Math.max(0, first - overscan), end: Math.min(total, first + count + overscan) }
}

/** Whether the viewer is (nearly) at the bottom, i.e. should keep following new lines. */
export function atBottom(scrollTop: number, viewportHeight: number, scrollHeight: number, slack = 8): boolean {
  return scrollTop + viewportHeight >= scrollHeight - slack
}
