/** Usage accounting: my usage per month, the admin's report (JSON or CSV), quotas per user, prices. */
import { api, unwrap } from './client'
import { downloadFile } from './http'
import type { components } from './schema'

type Schemas = components['schemas']
export type UsageTotals = Schemas['UsageTotals']
export type QuotaLimits = Schemas['QuotaLimits']
export type UsageMonth = Schemas['UsageMonth']
export type UsageItem = Schemas['UsageItem']
export type MyUsage = Schemas['MyUsage']
export type UsageReportRow = Schemas['UsageReportRow']
export type UsageReport = Schemas['UsageReport']
export type UserQuota = Schemas['UserQuotaView']
export type QuotaUpdate = Schemas['QuotaUpdate']
export type Prices = Schemas['PricesView']
export type PricesUpdate = Schemas['PricesBody']

const byUser = (user_id: number) => ({ params: { path: { user_id } } })

export const usageApi = {
  async mine(month?: string): Promise<MyUsage> {
    return unwrap(await api.GET('/api/usage/me', { params: { query: { month } } }))
  },
  async report(month?: string): Promise<UsageReport> {
    // The route also answers CSV (format=csv), so its generated type is a union the JSON call narrows.
    return unwrap(await api.GET('/api/admin/usage', { params: { query: { month, format: 'json' } } })) as UsageReport
  },
  /** The report as a CSV file, fetched with the session's token (a plain link would arrive without it). */
  async downloadReportCsv(path: string, month: string): Promise<void> {
    await downloadFile(path, `usage-${month}.csv`)
  },
  async quota(userId: number): Promise<UserQuota> {
    return unwrap(await api.GET('/api/admin/users/{user_id}/quota', byUser(userId)))
  },
  /** `null` for a limit means the server's default. */
  async saveQuota(userId: number, body: QuotaUpdate): Promise<UserQuota> {
    return unwrap(await api.PUT('/api/admin/users/{user_id}/quota', { ...byUser(userId), body }))
  },
  async prices(): Promise<Prices> {
    return unwrap(await api.GET('/api/admin/usage/prices'))
  },
  /** `null` puts a price back to the server's default. */
  async savePrices(body: PricesUpdate): Promise<Prices> {
    return unwrap(await api.PUT('/api/admin/usage/prices', { body }))
  },
}
