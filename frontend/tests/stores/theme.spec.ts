import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { nextTick } from 'vue'

import { THEME_STORAGE_KEY, useThemeStore } from '@/stores/theme'

function stubSystemDark(dark: boolean): void {
  vi.stubGlobal('matchMedia', (query: string) => ({ matches: dark && query.includes('dark'), media: query }))
}

describe('theme store', () => {
  beforeEach(() => {
    localStorage.clear()
    document.documentElement.className = ''
    setActivePinia(createPinia())
  })

  it('follows the system preference when nothing is saved', () => {
    stubSystemDark(true)
    const theme = useThemeStore()
    expect(theme.theme).toBe('dark')
    expect(document.documentElement.classList.contains('dark')).toBe(true)
  })

  it('defaults to light when the system is light', () => {
    stubSystemDark(false)
    expect(useThemeStore().isDark).toBe(false)
    expect(document.documentElement.classList.contains('dark')).toBe(false)
  })

  it('prefers the saved choice over the system', () => {
    stubSystemDark(true)
    localStorage.setItem(THEME_STORAGE_KEY, 'light')
    expect(useThemeStore().theme).toBe('light')
  })

  it('toggles html.dark and persists the choice', async () => {
    stubSystemDark(false)
    const theme = useThemeStore()
    theme.toggle()
    await nextTick()
    expect(theme.isDark).toBe(true)
    expect(document.documentElement.classList.contains('dark')).toBe(true)
    expect(localStorage.getItem(THEME_STORAGE_KEY)).toBe('dark')
    theme.toggle()
    await nextTick()
    expect(document.documentElement.classList.contains('dark')).toBe(false)
    expect(localStorage.getItem(THEME_STORAGE_KEY)).toBe('light')
  })

  it('ignores a corrupt saved value', () => {
    stubSystemDark(false)
    localStorage.setItem(THEME_STORAGE_KEY, 'purple')
    expect(useThemeStore().theme).toBe('light')
  })
})
