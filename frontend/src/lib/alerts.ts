/**
 * Alerts as the UI shows them: which filter the list starts on, the colour of a severity and of a
 * status, what a person may still do with an alert, and the page → limit/offset the alerts API takes.
 * Plain TypeScript (no Vue, no API calls) so it is unit-tested directly.
 */

/** The list's status filter, as the API's `status` query takes it (`active` = open or acknowledged). */
export const ALERT_FILTERS = ['active', 'open', 'acknowledged', 'resolved', 'all'] as const
export type AlertFilter = (typeof ALERT_FILTERS)[number]
export const DEFAULT_ALERT_FILTER: AlertFilter = 'active'

export type TagType = 'danger' | 'warning' | 'success' | 'info' | 'primary'

export function isAlertFilter(value: unknown): value is AlertFilter {
  return typeof value === 'string' && (ALERT_FILTERS as readonly string[]).includes(value)
}

/** critical → red, warning → amber; an unknown severity from a newer server stays neutral. */
export function severityTagType(severity: string): TagType {
  if (severity === 'critical') return 'danger'
  if (severity === 'warning') return 'warning'
  return 'info'
}

/** open → red (needs someone), acknowledged → amber (someone is on it), resolved → green. */
export function statusTagType(status: string): TagType {
  if (status === 'open') return 'danger'
  if (status === 'acknowledged') return 'warning'
  if (status === 'resolved') return 'success'
  return 'info'
}

interface AlertState {
  status: string
}

/** Only an open alert can be acknowledged (an acknowledged one already has someone on it). */
export function canAcknowledge(alert: AlertState): boolean {
  return alert.status === 'open'
}

/** Anything not yet resolved can be resolved by hand (open alerts too: fixed before anyone looked). */
export function canResolve(alert: AlertState): boolean {
  return alert.status !== 'resolved'
}

/** How an alert ended: by itself (the condition cleared), by a person, or not yet. */
export function resolutionOf(alert: {
  resolved_at: string | null
  resolved_by: string | null
  resolved_automatically?: boolean
}): 'automatic' | 'manual' | null {
  if (!alert.resolved_at) return null
  if (alert.resolved_automatically === true) return 'automatic'
  if (alert.resolved_automatically === false) return 'manual'
  return alert.resolved_by ? 'manual' : 'automatic'
}

/** The UI pages from 1; the alerts API takes limit and offset. */
export function pageWindow(page: number, pageSize: number): { limit: number; offset: number } {
  const size = Math.max(1, Math.floor(pageSize))
  return { limit: size, offset: Math.max(0, Math.floor(page) - 1) * size }
}

/** The channels (email, webhook) that failed to deliver an alert, for a warning on its row. */
export function failedDeliveries(delivery: Record<string, unknown> | null | undefined): ('email' | 'webhook')[] {
  if (!delivery) return []
  return (['email', 'webhook'] as const).filter((channel) => delivery[channel] === 'failed')
}
