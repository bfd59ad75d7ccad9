/** Alerts raised by the health rules (staff): the list, acknowledge / resolve, and the rules' thresholds. */
import { api, unwrap } from './client'
import type { components, operations } from './schema'

type Schemas = components['schemas']
export type AlertPublic = Schemas['AlertPublic']
export type AlertPage = Schemas['AlertPage']
export type AlertRuleValues = Schemas['AlertRules']
export type AlertRules = Schemas['AlertRulesView']
export type AlertRulesUpdate = Schemas['AlertRulesUpdate']
export type AlertListQuery = NonNullable<operations['alerts_list']['parameters']['query']>

const byAlert = (alert_id: number) => ({ params: { path: { alert_id } } })

export const alertsApi = {
  /** Newest first; `open_count` (open, not yet acknowledged, all pages) is what the header's bell shows. */
  async list(query: AlertListQuery = {}): Promise<AlertPage> {
    return unwrap(await api.GET('/api/alerts', { params: { query } }))
  },
  async acknowledge(id: number): Promise<AlertPublic> {
    return unwrap(await api.POST('/api/alerts/{alert_id}/acknowledge', byAlert(id)))
  },
  async resolve(id: number): Promise<AlertPublic> {
    return unwrap(await api.POST('/api/alerts/{alert_id}/resolve', byAlert(id)))
  },
  async rules(): Promise<AlertRules> {
    return unwrap(await api.GET('/api/alerts/rules'))
  },
  /** Only the rules given change; `null` puts a rule back to its default. */
  async saveRules(body: AlertRulesUpdate): Promise<AlertRules> {
    return unwrap(await api.PUT('/api/alerts/rules', { body }))
  },
}
