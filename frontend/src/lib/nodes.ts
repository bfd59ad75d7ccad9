/**
 * The framework-free rules of the nodes pages and the operator dashboard: how a node's status and
 * its readings look (tag colours, bar percentages, temperature tones), which drain actions a node
 * offers, the node page's time ranges, and its history turned into chart series (gaps where the node
 * did not report, the live reading appended without re-reading the history).
 *
 * The shapes here are structural: the API's generated types fit them without lib/ importing api/.
 */

/** lost > drain > unhealthy > ready: services/operations/node_status.py decides, we only show it. */
export type NodeStatus = 'ready' | 'draining' | 'drained' | 'unhealthy' | 'lost'
export type DrainMode = 'finish' | 'now'
export type TagType = 'primary' | 'success' | 'info' | 'warning' | 'danger'

const STATUS_TAGS: Readonly<Record<NodeStatus, TagType>> = {
  ready: 'success',
  draining: 'warning',
  drained: 'info',
  unhealthy: 'danger',
  lost: 'danger',
}

export function nodeStatusTag(status: string): TagType {
  return STATUS_TAGS[status as NodeStatus] ?? 'info'
}

/** Drain is offered while the operator has not drained the node; undrain once they have. */
export function canDrain(node: { drain_mode?: string | null }): boolean {
  return !node.drain_mode
}

export function canUndrain(node: { drain_mode?: string | null }): boolean {
  return !!node.drain_mode
}

function isNum(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

/** part / whole as 0..100 with one decimal (a progress bar's value); 0 when either is unknown. */
export function percentOf(part: number | null | undefined, whole: number | null | undefined): number {
  if (!isNum(part) || !isNum(whole) || whole <= 0) return 0
  return Math.round(Math.min(1, Math.max(0, part / whole)) * 1000) / 10
}

/** A 0..100 value rounded for a bar (null → 0). */
export function clampPercent(value: number | null | undefined): number {
  if (!isNum(value)) return 0
  return Math.round(Math.min(100, Math.max(0, value)) * 10) / 10
}

/** Element Plus progress status: red from 90 %, amber from 75 %. */
export function loadStatus(percent: number): '' | 'warning' | 'exception' {
  if (percent >= 90) return 'exception'
  if (percent >= 75) return 'warning'
  return ''
}

/** Where GPUs slow themselves down when the driver does not say (the health rule's default too). */
export const DEFAULT_SLOWDOWN_C = 85
/** How far below the slowdown temperature a GPU reads as "getting hot". */
const WARM_MARGIN_C = 10

export type Tone = 'ok' | 'warm' | 'hot' | 'none'

/** A GPU temperature's tone against its own slowdown threshold (or 85 °C). */
export function temperatureTone(celsius: number | null | undefined, slowdownC?: number | null): Tone {
  if (!isNum(celsius)) return 'none'
  const limit = isNum(slowdownC) && slowdownC > 0 ? slowdownC : DEFAULT_SLOWDOWN_C
  if (celsius >= limit) return 'hot'
  if (celsius >= limit - WARM_MARGIN_C) return 'warm'
  return 'ok'
}

/** The mean utilisation and the hottest temperature of a node's GPUs (null when none reports). */
export function gpuSummary(gpus: readonly { utilization?: number | null; temperature_c?: number | null }[]): {
  utilization: number | null
  temperatureC: number | null
} {
  const utils = gpus.map((g) => g.utilization).filter(isNum)
  const temps = gpus.map((g) => g.temperature_c).filter(isNum)
  return {
    utilization: utils.length ? Math.round((utils.reduce((a, b) => a + b, 0) / utils.length) * 10) / 10 : null,
    temperatureC: temps.length ? Math.max(...temps) : null,
  }
}

// ----- the node page's time range -----

/** The node page's time ranges, in hours: 1 h, 6 h, 24 h, 7 d (GET /api/nodes/{id}?hours= allows 1..168). */
export const RANGE_HOURS = [1, 6, 24, 168] as const
export type RangeHours = (typeof RANGE_HOURS)[number]
export const DEFAULT_RANGE: RangeHours = 1

/** The range a `?hours=` query asks for, when it is one of ours; else the default. */
export function parseRange(raw: unknown): RangeHours {
  const value = Number(Array.isArray(raw) ? raw[0] : raw)
  return (RANGE_HOURS as readonly number[]).includes(value) ? (value as RangeHours) : DEFAULT_RANGE
}

// ----- history → chart series -----

export interface GpuReading {
  index: number
  utilization?: number | null
  memory_used_bytes?: number | null
  memory_total_bytes?: number | null
  temperature_c?: number | null
  power_w?: number | null
}

export interface HistoryPoint {
  ts: string
  cpu_percent?: number | null
  memory_used_bytes?: number | null
  memory_total_bytes?: number | null
  disk_free_bytes?: number | null
  gpus?: readonly GpuReading[] | null
}

/** One chart point: epoch milliseconds and a value (null breaks the line). */
export type SeriesPoint = [number, number | null]

export type NodeMetric = 'cpu_percent' | 'memory_used_bytes' | 'disk_free_bytes'
export type GpuMetric = 'utilization' | 'memory_used_bytes' | 'temperature_c' | 'power_w'

function timeOf(ts: string): number {
  return new Date(ts).getTime()
}

/** The typical spacing of the points (their median step), 0 with fewer than two points. */
export function medianStepMs(times: readonly number[]): number {
  const steps: number[] = []
  for (let i = 1; i < times.length; i++) steps.push(times[i]! - times[i - 1]!)
  if (steps.length === 0) return 0
  steps.sort((a, b) => a - b)
  return steps[Math.floor(steps.length / 2)]!
}

/** A silence longer than this many usual steps is drawn as a gap, not a straight line across it. */
const GAP_STEPS = 5
/** ...and never shorter than this, so one late sample at full rate does not cut the line. */
const MIN_GAP_MS = 60_000

/**
 * Insert a [ts, null] point inside every silence (a node that stopped reporting, a server restart),
 * so the chart breaks its line there instead of drawing a straight line across the missing time.
 */
export function withGaps(points: readonly SeriesPoint[]): SeriesPoint[] {
  const step = medianStepMs(points.map((p) => p[0]))
  const limit = Math.max(MIN_GAP_MS, step * GAP_STEPS)
  const out: SeriesPoint[] = []
  for (const point of points) {
    const last = out[out.length - 1]
    if (last !== undefined && point[0] - last[0] > limit) out.push([Math.round((last[0] + point[0]) / 2), null])
    out.push(point)
  }
  return out
}

function valueOf(value: unknown): number | null {
  return isNum(value) ? value : null
}

/** One of the node's own readings over time, with gaps. */
export function nodeSeries(history: readonly HistoryPoint[], metric: NodeMetric): SeriesPoint[] {
  return withGaps(history.map((p) => [timeOf(p.ts), valueOf(p[metric])] as SeriesPoint))
}

/** The node's memory size over the range (the memory chart's ceiling): the largest total seen. */
export function memoryTotal(history: readonly HistoryPoint[]): number | null {
  const totals = history.map((p) => p.memory_total_bytes).filter(isNum)
  return totals.length ? Math.max(...totals) : null
}

/** One GPU reading over time per GPU index (ascending), each with gaps. */
export function gpuSeries(
  history: readonly HistoryPoint[],
  metric: GpuMetric,
): { index: number; points: SeriesPoint[] }[] {
  const byIndex = new Map<number, SeriesPoint[]>()
  for (const point of history) {
    const at = timeOf(point.ts)
    for (const gpu of point.gpus ?? []) {
      let list = byIndex.get(gpu.index)
      if (!list) byIndex.set(gpu.index, (list = []))
      list.push([at, valueOf(gpu[metric])])
    }
  }
  return [...byIndex.entries()]
    .sort(([a], [b]) => a - b)
    .map(([index, points]) => ({ index, points: withGaps(points) }))
}

/**
 * The history after a live reading arrived (the operations socket's `nodes` message): the reading
 * appended when it is newer than the last point, and points older than the range dropped. The same
 * array comes back when nothing changed, so a chart does not redraw for a repeated reading.
 */
export function appendLatest<T extends HistoryPoint>(
  history: readonly T[],
  latest: T | null | undefined,
  hours: number,
  now: number = Date.now(),
): readonly T[] {
  if (!latest) return history
  const last = history[history.length - 1]
  const at = timeOf(latest.ts)
  if (Number.isNaN(at) || (last !== undefined && at <= timeOf(last.ts))) return history
  const since = now - hours * 3_600_000
  return [...history.filter((p) => timeOf(p.ts) >= since), latest]
}
