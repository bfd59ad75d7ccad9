import { defineStore } from 'pinia'
import { ref, watch } from 'vue'

import { i18n, isAppLocale, localeFromBrowser, type AppLocale } from '@/i18n'

import { readSetting, writeSetting } from '@/lib/storage'

export const LOCALE_STORAGE_KEY = 'loraforge.locale'

/** The UI language: saved choice, else the browser's language. Drives vue-i18n and <html lang>. */
export const useLocaleStore = defineStore('locale', () => {
  const saved = readSetting(LOCALE_STORAGE_KEY)
  const locale = ref<AppLocale>(isAppLocale(saved) ? saved : localeFromBrowser(globalThis.navigator?.language))

  function apply(value: AppLocale): void {
    i18n.global.locale.value = value
    if (typeof document !== 'undefined') document.documentElement.lang = value
  }

  function setLocale(value: AppLocale): void {
    locale.value = value
    writeSetting(LOCALE_STORAGE_KEY, value)
  }

  watch(locale, apply, { immediate: true })

  return { locale, setLocale }
})
