/**
 * The alert rules form: its fields, their bounds (the server's own, so a bad value is caught before
 * sending), and the PUT body it sends — only what changed, with `null` for a rule put back to its
 * default (the server then uses its configured value again).
 */

export const NUMERIC_RULES = [
  'gpu_temperature_c',
  'gpu_memory_percent',
  'disk_free_gb',
  'job_hung_minutes',
  'node_failures',
  'node_failures_window_hours',
] as const
export type NumericRule = (typeof NUMERIC_RULES)[number]
export const HUNG_ACTIONS = ['alert', 'stop'] as const
export type HungAction = (typeof HUNG_ACTIONS)[number]
export type RuleKey = NumericRule | 'job_hung_action'
export const RULE_KEYS: readonly RuleKey[] = [...NUMERIC_RULES, 'job_hung_action']

/** One value per rule; the GPU temperature may be unset (then each GPU's own slowdown threshold). */
export interface RuleValues {
  gpu_temperature_c: number | null
  gpu_memory_percent: number
  disk_free_gb: number
  job_hung_minutes: number
  job_hung_action: HungAction
  node_failures: number
  node_failures_window_hours: number
}

export type RulesPatch = { [K in RuleKey]?: RuleValues[K] | null }

export interface RuleBounds {
  min: number
  /** True when the minimum itself is refused (a value must be above it). */
  exclusiveMin?: boolean
  max?: number
  step: number
  integer?: boolean
}

/** Mirrors the server's validation (settings_ops.py): what the inputs allow. */
export const RULE_BOUNDS: Record<NumericRule, RuleBounds> = {
  gpu_temperature_c: { min: 30, max: 120, step: 1 },
  gpu_memory_percent: { min: 0, exclusiveMin: true, max: 100, step: 1 },
  disk_free_gb: { min: 0, step: 1 },
  job_hung_minutes: { min: 0, exclusiveMin: true, step: 1 },
  node_failures: { min: 1, max: 1000, step: 1, integer: true },
  node_failures_window_hours: { min: 0, exclusiveMin: true, step: 1 },
}

/** Why a value is refused, as a key of the form's messages, or null when it is fine. */
export function boundsProblem(
  key: NumericRule,
  value: number | null | undefined,
): 'required' | 'tooLow' | 'tooHigh' | 'integer' | null {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return key === 'gpu_temperature_c' ? null : 'required'
  }
  const bounds = RULE_BOUNDS[key]
  if (bounds.exclusiveMin ? value <= bounds.min : value < bounds.min) return 'tooLow'
  if (bounds.max !== undefined && value > bounds.max) return 'tooHigh'
  if (bounds.integer && !Number.isInteger(value)) return 'integer'
  return null
}

/**
 * The body of PUT /api/alerts/rules: the rules whose edited value differs from the saved one, and
 * `null` for each rule in `resets` (back to the default, whatever the form shows for it).
 */
export function rulesPatch(saved: RuleValues, edited: RuleValues, resets: Iterable<RuleKey> = []): RulesPatch {
  const patch: Record<string, number | string | null> = {}
  for (const key of RULE_KEYS) {
    if (edited[key] !== saved[key]) patch[key] = edited[key]
  }
  for (const key of resets) patch[key] = null
  return patch as RulesPatch
}

/** A copy of the values, typed: the form edits the copy, the saved values stay for the diff. */
export function copyRules(values: RuleValues): RuleValues {
  return { ...values }
}
