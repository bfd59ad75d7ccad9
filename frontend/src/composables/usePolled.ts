/**
 * One value read now and again every `everyMs` for as long as the component lives (the dashboard's
 * queue and host panels). A failure is kept in `error` (the panel says so in place) and the next
 * poll tries again; a reading never arrives after the component has gone.
 */
import { onScopeDispose, ref, shallowRef, type Ref, type ShallowRef } from 'vue'

export interface Polled<T> {
  data: ShallowRef<T | null>
  error: Ref<unknown>
  /** Read now (and restart the timer). */
  reload: () => Promise<void>
}

export function usePolled<T>(read: () => Promise<T>, everyMs: number): Polled<T> {
  const data = shallowRef<T | null>(null)
  const error = ref<unknown>(null)
  let timer: ReturnType<typeof setTimeout> | null = null
  let disposed = false

  async function reload(): Promise<void> {
    if (timer !== null) clearTimeout(timer)
    timer = null
    try {
      const value = await read()
      if (disposed) return
      data.value = value
      error.value = null
    } catch (err) {
      if (!disposed) error.value = err
    } finally {
      if (!disposed && timer === null) timer = setTimeout(() => void reload(), everyMs)
    }
  }

  onScopeDispose(() => {
    disposed = true
    if (timer !== null) clearTimeout(timer)
    timer = null
  })

  void reload()
  return { data, error, reload }
}
