/** In-app notifications (job finished, failed…) and the user's webhook settings. */
import { api, unwrap } from './client'
import type { components } from './schema'

type Schemas = components['schemas']
export type AppNotification = Schemas['NotificationPublic']
export type NotificationPage = Schemas['NotificationPage']
export type NotificationSettings = Schemas['NotificationSettings']
export type WebhookTestResult = Schemas['WebhookTestResult']

export const notificationsApi = {
  async list(q: { unread_only?: boolean; page?: number; page_size?: number } = {}): Promise<NotificationPage> {
    return unwrap(await api.GET('/api/notifications', { params: { query: q } }))
  },
  /** Returns how many are still unread. */
  async markRead(ids: number[]): Promise<number> {
    return unwrap(await api.POST('/api/notifications/read', { body: { ids, all: false } })).unread
  },
  async markAllRead(): Promise<number> {
    return unwrap(await api.POST('/api/notifications/read', { body: { all: true } })).unread
  },
  async settings(): Promise<NotificationSettings> {
    return unwrap(await api.GET('/api/notifications/settings'))
  },
  async saveSettings(body: { webhook_url: string | null }): Promise<NotificationSettings> {
    return unwrap(await api.PUT('/api/notifications/settings', { body }))
  },
  async testWebhook(): Promise<WebhookTestResult> {
    return unwrap(await api.POST('/api/notifications/test-webhook', { body: {} }))
  },
}
