/** Scores: reading order, direction, best per key, deltas, formatting and the radar scale; list helpers. */
import { describe, expect, it } from 'vitest'

import type { Evaluation } from '@/api/evaluations'
import { bestScores, canCompare, compareRuns, parseRuns } from '@/components/evaluations/listing'
import {
  bestByMetric,
  chartData,
  deltaIsBetter,
  deltasAgainst,
  direction,
  formatDelta,
  formatScore,
  metricKeys,
  type ScoreRow,
} from '@/components/evaluations/scores'

const rows: ScoreRow[] = [
  { id: 1, model: 'base', metrics: { perplexity: 12, 'rouge-l': 20, 'bleu-4': 10 } },
  { id: 2, model: 'tuned', metrics: { perplexity: 8, 'rouge-l': 30, 'bleu-4': 9 } },
]

describe('scores', () => {
  it('orders keys for reading and knows lower-is-better keys', () => {
    expect(metricKeys(rows)).toEqual(['bleu-4', 'rouge-l', 'perplexity'])
    expect(direction('perplexity')).toBe('lower')
    expect(direction('rouge-l')).toBe('higher')
    expect(direction('rouge-l', { 'rouge-l': 'lower' })).toBe('lower')
  })

  it('marks the best per key in its direction', () => {
    expect(bestByMetric(rows, metricKeys(rows))).toEqual({ 'bleu-4': 1, 'rouge-l': 2, perplexity: 2 })
    // Nothing to win: one model alone, or every model scoring the same.
    expect(bestByMetric(rows.slice(0, 1), ['rouge-l'])).toEqual({})
    const tied = [
      rows[0]!,
      { ...rows[1]!, metrics: { 'rouge-l': 20 } },
      { id: 3, model: 'x', metrics: { 'rouge-l': 5 } },
    ]
    expect(bestByMetric(tied, ['rouge-l'])).toEqual({ 'rouge-l': 1 })
    expect(bestByMetric(tied.slice(0, 2), ['rouge-l'])).toEqual({})
  })

  it('takes deltas against the baseline, and says which are better', () => {
    const d = deltasAgainst(rows, 1, ['rouge-l', 'perplexity', 'chrf'])
    expect(d[1]).toEqual({ 'rouge-l': null, perplexity: null, chrf: null })
    expect(d[2]).toEqual({ 'rouge-l': 10, perplexity: -4, chrf: null })
    expect(deltaIsBetter('perplexity', -4)).toBe(true)
    expect(deltaIsBetter('rouge-l', -1)).toBe(false)
    expect(deltaIsBetter('rouge-l', 0)).toBeNull()
  })

  it('formats scores and deltas compactly', () => {
    expect(formatScore(12.34567)).toBe('12.346')
    expect(formatScore(0.123456)).toBe('0.1235')
    expect(formatScore(null)).toBe('—')
    expect(formatDelta(2.5)).toBe('+2.5')
    expect(formatDelta(-0.25)).toBe('−0.25')
    expect(formatDelta(null)).toBe('')
  })

  it('puts the radar on a 0–1 scale where each key’s best is 1', () => {
    const data = chartData(rows, ['rouge-l', 'perplexity'])
    expect(data.models).toEqual(['base', 'tuned'])
    expect(data.values).toEqual([
      [20, 12],
      [30, 8],
    ])
    expect(data.radar[1]).toEqual([1, 1])
    expect(data.radar[0]![0]).toBeCloseTo(0.6667, 3)
    expect(data.radar[0]![1]).toBeCloseTo(0.6667, 3)
  })
})

describe('listing', () => {
  const evaluation = {
    runs: [
      { id: 5, model: 'base', results: { metrics: { 'rouge-l': 20 } } },
      { id: 6, model: 'tuned', results: { metrics: { 'rouge-l': 31 } } },
      { id: 7, model: 'pending', results: null },
    ],
  } as unknown as Evaluation

  it('shows the best score with its model, and compares scored runs only', () => {
    expect(bestScores(evaluation)).toEqual([{ key: 'rouge-l', value: 31, model: 'tuned' }])
    const alone = { runs: [evaluation.runs[0]] } as unknown as Evaluation
    expect(bestScores(alone)).toEqual([{ key: 'rouge-l', value: 20, model: 'base' }])
    expect(compareRuns([evaluation])).toEqual([5, 6])
    expect(canCompare([5])).toBe(false)
    expect(canCompare([5, 6])).toBe(true)
    expect(canCompare([1, 2, 3, 4, 5, 6, 7, 8, 9])).toBe(false)
  })

  it('parses ?runs=', () => {
    expect(parseRuns('3,1,x,3,-2')).toEqual([3, 1])
    expect(parseRuns(undefined)).toEqual([])
  })
})
