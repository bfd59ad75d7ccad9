/**
 * What the evaluations list derives from a row: whether it is still moving (the list polls while one
 * is), its best scores, and the runs a selection compares.
 */
import type { Evaluation, EvaluationStatus } from '@/api/evaluations'

import { metricKeys, runRows, topRow } from './scores'

export const MIN_COMPARE = 2
export const MAX_COMPARE = 8

const MOVING: readonly EvaluationStatus[] = ['queued', 'starting', 'running', 'stopping']
export const isMoving = (status: EvaluationStatus): boolean => MOVING.includes(status)
export const anyMoving = (items: readonly Evaluation[]): boolean => items.some((e) => isMoving(e.status))

export interface BestScore {
  key: string
  value: number
  model: string
}

/** The best value of each of the first `limit` totals keys, and which model got it. */
export function bestScores(evaluation: Evaluation, limit = 3): BestScore[] {
  const rows = runRows(evaluation.runs)
  return metricKeys(rows)
    .slice(0, limit)
    .flatMap((key) => {
      const row = topRow(rows, key)
      return row ? [{ key, value: row.metrics[key]!, model: row.model }] : []
    })
}

/** The scored runs of the chosen evaluations, in order (what "Compare" opens). */
export function compareRuns(evaluations: readonly Evaluation[]): number[] {
  return evaluations.flatMap((e) => e.runs.filter((r) => r.results?.metrics).map((r) => r.id))
}

export function canCompare(runs: readonly number[]): boolean {
  return runs.length >= MIN_COMPARE && runs.length <= MAX_COMPARE
}

/** `?runs=1,2,3` → [1, 2, 3] (anything not a positive integer dropped, duplicates once). */
export function parseRuns(value: unknown): number[] {
  const raw = Array.isArray(value) ? value[0] : value
  if (typeof raw !== 'string') return []
  const ids = raw
    .split(',')
    .map((part) => Number(part.trim()))
    .filter((id) => Number.isInteger(id) && id > 0)
  return [...new Set(ids)].slice(0, MAX_COMPARE)
}
