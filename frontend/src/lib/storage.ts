/** localStorage that never throws (private mode, disabled storage, SSR-less tests). */
export function readSetting(key: string): string | null {
  try {
    return globalThis.localStorage?.getItem(key) ?? null
  } catch {
    return null
  }
}

export function writeSetting(key: string, value: string): void {
  try {
    globalThis.localStorage?.setItem(key, value)
  } catch {
    // A preference that cannot be saved still applies for this tab.
  }
}
