/**
 * What the header's alert bell shows: the number of open alerts and the newest of them. Shared state,
 * so the alerts page updates the bell as soon as someone acknowledges or resolves an alert there,
 * rather than at the bell's next poll.
 */
import { ref, shallowRef } from 'vue'

import { alertsApi, type AlertPage, type AlertPublic } from '@/api/alerts'

/** How many open alerts the bell's popover lists. */
export const BELL_LATEST = 5

export const openAlertCount = ref<number | null>(null)
export const latestOpenAlerts = shallowRef<AlertPublic[]>([])

/**
 * Take the open count from any answer of the alerts list (each one carries it); when it changed, the
 * bell's list of the newest is read again too, so the count and the list never disagree.
 */
export function noteAlertPage(page: AlertPage): void {
  if (openAlertCount.value === page.open_count) return
  openAlertCount.value = page.open_count
  void refreshOpenAlerts().catch(() => undefined)
}

/** Read the open alerts again (the bell's poll, and after a change on the alerts page). */
export async function refreshOpenAlerts(): Promise<void> {
  const page = await alertsApi.list({ status: 'open', limit: BELL_LATEST, offset: 0 })
  openAlertCount.value = page.open_count
  latestOpenAlerts.value = page.items
}
