import { defineStore } from 'pinia'
import { computed, ref, watch } from 'vue'

import { readSetting, writeSetting } from '@/lib/storage'

export type Theme = 'light' | 'dark'
export const THEME_STORAGE_KEY = 'loraforge.theme'

function systemPrefersDark(): boolean {
  return globalThis.matchMedia?.('(prefers-color-scheme: dark)').matches ?? false
}

/**
 * Light or dark. Element Plus's dark palette is a set of CSS variables scoped to `html.dark`,
 * so switching is just toggling that class.
 */
export const useThemeStore = defineStore('theme', () => {
  const saved = readSetting(THEME_STORAGE_KEY)
  const theme = ref<Theme>(saved === 'dark' || saved === 'light' ? saved : systemPrefersDark() ? 'dark' : 'light')
  const isDark = computed(() => theme.value === 'dark')

  function setTheme(value: Theme): void {
    theme.value = value
    writeSetting(THEME_STORAGE_KEY, value)
  }

  function toggle(): void {
    setTheme(isDark.value ? 'light' : 'dark')
  }

  watch(
    theme,
    (value) => {
      if (typeof document !== 'undefined') document.documentElement.classList.toggle('dark', value === 'dark')
    },
    { immediate: true },
  )

  return { theme, isDark, setTheme, toggle }
})
