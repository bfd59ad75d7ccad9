import { describe, expect, it } from 'vitest'

import {
  DEFAULT_RANGE,
  appendLatest,
  canDrain,
  canUndrain,
  clampPercent,
  gpuSeries,
  gpuSummary,
  loadStatus,
  medianStepMs,
  memoryTotal,
  nodeSeries,
  nodeStatusTag,
  parseRange,
  percentOf,
  temperatureTone,
  withGaps,
  type HistoryPoint,
  type SeriesPoint,
} from '@/lib/nodes'

const T0 = Date.parse('2026-12-01T10:00:00Z')
const at = (s: number) => new Date(T0 + s * 1000).toISOString()

function point(s: number, partial: Partial<HistoryPoint> = {}): HistoryPoint {
  return {
    ts: at(s),
    cpu_percent: 10 + s,
    memory_used_bytes: 1000 + s,
    memory_total_bytes: 4000,
    disk_free_bytes: 9000 - s,
    gpus: [],
    ...partial,
  }
}

describe('node status and drain', () => {
  it('colours each status, unknown ones as info', () => {
    expect(nodeStatusTag('ready')).toBe('success')
    expect(nodeStatusTag('draining')).toBe('warning')
    expect(nodeStatusTag('drained')).toBe('info')
    expect(nodeStatusTag('unhealthy')).toBe('danger')
    expect(nodeStatusTag('lost')).toBe('danger')
    expect(nodeStatusTag('rebooting')).toBe('info')
  })

  it('offers drain until the operator drained the node, then undrain', () => {
    expect(canDrain({ drain_mode: null })).toBe(true)
    expect(canUndrain({ drain_mode: null })).toBe(false)
    expect(canDrain({ drain_mode: 'finish' })).toBe(false)
    expect(canUndrain({ drain_mode: 'now' })).toBe(true)
  })
})

describe('readings as bars and tones', () => {
  it('turns part of a whole into a bounded percentage with one decimal', () => {
    expect(percentOf(1, 3)).toBe(33.3)
    expect(percentOf(5, 4)).toBe(100)
    expect(percentOf(null, 4)).toBe(0)
    expect(percentOf(1, 0)).toBe(0)
    expect(clampPercent(123)).toBe(100)
    expect(clampPercent(-2)).toBe(0)
    expect(clampPercent(null)).toBe(0)
    expect(clampPercent(42.46)).toBe(42.5)
  })

  it('turns a bar amber from 75 % and red from 90 %', () => {
    expect(loadStatus(74.9)).toBe('')
    expect(loadStatus(75)).toBe('warning')
    expect(loadStatus(90)).toBe('exception')
  })

  it("judges a temperature against the GPU's own slowdown threshold, else 85 °C", () => {
    expect(temperatureTone(null)).toBe('none')
    expect(temperatureTone(60)).toBe('ok')
    expect(temperatureTone(75)).toBe('warm')
    expect(temperatureTone(85)).toBe('hot')
    expect(temperatureTone(85, 95)).toBe('warm')
    expect(temperatureTone(70, 78)).toBe('warm')
    expect(temperatureTone(78, 78)).toBe('hot')
    expect(temperatureTone(80, 0)).toBe('warm') // a zero threshold means "unknown"
  })

  it("sums up a node's GPUs as mean utilization and the hottest temperature", () => {
    expect(gpuSummary([])).toEqual({ utilization: null, temperatureC: null })
    expect(
      gpuSummary([
        { utilization: 50, temperature_c: 60 },
        { utilization: 75, temperature_c: 71 },
        { utilization: null, temperature_c: null },
      ]),
    ).toEqual({ utilization: 62.5, temperatureC: 71 })
  })
})

describe('time range', () => {
  it('accepts only the offered ranges from ?hours=', () => {
    expect(parseRange('6')).toBe(6)
    expect(parseRange(['168'])).toBe(168)
    expect(parseRange('24')).toBe(24)
    expect(parseRange('5')).toBe(DEFAULT_RANGE)
    expect(parseRange(undefined)).toBe(1)
    expect(parseRange('abc')).toBe(1)
  })
})

describe('history as chart series', () => {
  it('finds the usual step between points', () => {
    expect(medianStepMs([])).toBe(0)
    expect(medianStepMs([1])).toBe(0)
    expect(medianStepMs([0, 10, 20, 1000, 1010])).toBe(10)
  })

  it('breaks the line where the node was silent, not for an ordinary late sample', () => {
    const points: SeriesPoint[] = [0, 5, 10, 15, 20, 300, 305].map((s) => [T0 + s * 1000, s])
    const out = withGaps(points)
    expect(out).toHaveLength(8)
    expect(out[5]).toEqual([T0 + 160_000, null])
    // 5 s samples 30 s apart: still under the one-minute floor, so no gap.
    const late: SeriesPoint[] = [0, 5, 10, 40].map((s) => [T0 + s * 1000, s])
    expect(withGaps(late)).toHaveLength(4)
  })

  it("makes the node's own series and the memory ceiling", () => {
    const history = [point(0), point(10), point(20, { cpu_percent: null, memory_total_bytes: 8000 })]
    expect(nodeSeries(history, 'cpu_percent')).toEqual([
      [T0, 10],
      [T0 + 10_000, 20],
      [T0 + 20_000, null],
    ])
    expect(nodeSeries(history, 'disk_free_bytes').map((p) => p[1])).toEqual([9000, 8990, 8980])
    expect(memoryTotal(history)).toBe(8000)
    expect(memoryTotal([])).toBeNull()
  })

  it('makes one series per GPU index in order, whatever order the readings come in', () => {
    const gpu = (index: number, utilization: number) => ({
      index,
      utilization,
      memory_used_bytes: index * 100,
      memory_total_bytes: 1000,
      temperature_c: 50 + index,
      power_w: 100,
    })
    const history = [point(0, { gpus: [gpu(1, 10), gpu(0, 20)] }), point(10, { gpus: [gpu(0, 30), gpu(1, 40)] })]
    const util = gpuSeries(history, 'utilization')
    expect(util.map((s) => s.index)).toEqual([0, 1])
    expect(util[0]!.points).toEqual([
      [T0, 20],
      [T0 + 10_000, 30],
    ])
    expect(util[1]!.points.map((p) => p[1])).toEqual([10, 40])
    expect(gpuSeries(history, 'temperature_c')[1]!.points.map((p) => p[1])).toEqual([51, 51])
    expect(gpuSeries([point(0)], 'power_w')).toEqual([])
  })

  it('appends a newer live reading, drops points older than the range, and ignores a repeat', () => {
    const history = [point(0), point(1800), point(3500)]
    const now = T0 + 3700 * 1000
    const next = appendLatest(history, point(3700), 1, now)
    expect(next.map((p) => p.ts)).toEqual([at(1800), at(3500), at(3700)])
    expect(appendLatest(next, point(3700), 1, now)).toBe(next)
    expect(appendLatest(next, point(100), 1, now)).toBe(next)
    expect(appendLatest(next, null, 1, now)).toBe(next)
    expect(appendLatest([], point(5), 1, T0 + 5000)).toHaveLength(1)
  })
})
