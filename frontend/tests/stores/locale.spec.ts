import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { nextTick } from 'vue'

import { i18n, localeFromBrowser } from '@/i18n'
import en from '@/i18n/locales/en'
import zhCN from '@/i18n/locales/zh-CN'
import { LOCALE_STORAGE_KEY, useLocaleStore } from '@/stores/locale'

function stubBrowserLanguage(language: string): void {
  vi.stubGlobal('navigator', { ...navigator, language })
}

function keysOf(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null) return [prefix]
  return Object.entries(value).flatMap(([key, inner]) => keysOf(inner, prefix ? `${prefix}.${key}` : key))
}

describe('locale store', () => {
  beforeEach(() => {
    localStorage.clear()
    setActivePinia(createPinia())
  })

  it('defaults from navigator.language', () => {
    stubBrowserLanguage('zh-TW')
    const store = useLocaleStore()
    expect(store.locale).toBe('zh-CN')
    expect(i18n.global.locale.value).toBe('zh-CN')
    expect(document.documentElement.lang).toBe('zh-CN')
  })

  it('falls back to English for other languages', () => {
    stubBrowserLanguage('de-DE')
    expect(useLocaleStore().locale).toBe('en')
  })

  it('prefers the saved choice', () => {
    stubBrowserLanguage('en-US')
    localStorage.setItem(LOCALE_STORAGE_KEY, 'zh-CN')
    expect(useLocaleStore().locale).toBe('zh-CN')
  })

  it('switches vue-i18n and persists', async () => {
    stubBrowserLanguage('en-US')
    const store = useLocaleStore()
    expect(i18n.global.t('nav.dashboard')).toBe('Dashboard')
    store.setLocale('zh-CN')
    await nextTick()
    expect(i18n.global.t('nav.dashboard')).toBe('仪表盘')
    expect(localStorage.getItem(LOCALE_STORAGE_KEY)).toBe('zh-CN')
  })

  it('maps browser tags', () => {
    expect(localeFromBrowser('zh')).toBe('zh-CN')
    expect(localeFromBrowser('ZH-hans-CN')).toBe('zh-CN')
    expect(localeFromBrowser('en-GB')).toBe('en')
    expect(localeFromBrowser(undefined)).toBe('en')
  })

  it('has the same keys in every locale, none empty', () => {
    expect(keysOf(zhCN).sort()).toEqual(keysOf(en).sort())
    for (const messages of [en, zhCN]) {
      for (const key of keysOf(messages)) {
        const value = key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], messages)
        expect(typeof value === 'string' && value.length > 0, key).toBe(true)
      }
    }
  })
})
