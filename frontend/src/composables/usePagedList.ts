/**
 * The state of a list page: the rows, the total, loading, and the page the user is on. `load`
 * fetches the current page (showing a failure as a message), `search` goes back to page 1 (a
 * filter changed), `goTo`/`resize` are what the pager calls, and `change` runs a delete (or the
 * like), says it is done and reloads. Only the newest request may update the rows: a slow answer to
 * an old filter never overwrites a newer one.
 *
 * With `poll`, the list reloads itself quietly (no spinner, no error message) every `everyMs`
 * while `while(rows)` holds, e.g. while a job on the page is still running; the timer stops
 * when the component goes away.
 */
import { ElMessage } from 'element-plus'
import { onScopeDispose, ref, type Ref } from 'vue'

import { useErrorText } from './useErrorText'

export interface Paging {
  page: number
  page_size: number
}

/** What a fetch returns: a server page, or the whole list when the endpoint does not page. */
export type PageOf<T> = { items: T[]; total: number } | T[]

export interface PagedListOptions<T> {
  pageSize?: number
  /** How a failure reads (default: useErrorText). */
  errorText?: (err: unknown) => string
  poll?: { everyMs: number; while?: (items: T[]) => boolean }
}

export interface PagedList<T> {
  items: Ref<T[]>
  total: Ref<number>
  loading: Ref<boolean>
  /** True once a load has succeeded (a background refresh need not show the spinner again). */
  loaded: Ref<boolean>
  page: Ref<number>
  pageSize: Ref<number>
  /** Fetch the current page; `quiet` skips the spinner and the error message (background refresh). */
  load: (opts?: { quiet?: boolean }) => Promise<void>
  /** Back to the first page and load (a filter or the search text changed). */
  search: () => Promise<void>
  goTo: (page: number) => Promise<void>
  resize: (pageSize: number) => Promise<void>
  /** Run a change to the list (delete, revoke…), say `done`, reload; a failure shows as a message. */
  change: (action: () => Promise<unknown>, done: string) => Promise<boolean>
}

export function usePagedList<T>(
  fetchPage: (paging: Paging) => Promise<PageOf<T>>,
  options: PagedListOptions<T> = {},
): PagedList<T> {
  const errorText = options.errorText ?? useErrorText()
  const items = ref([]) as Ref<T[]>
  const total = ref(0)
  const loading = ref(false)
  const loaded = ref(false)
  const page = ref(1)
  const pageSize = ref(options.pageSize ?? 20)
  let generation = 0
  let timer: ReturnType<typeof setTimeout> | null = null
  let disposed = false

  function schedule(): void {
    if (timer !== null) clearTimeout(timer)
    timer = null
    const poll = options.poll
    if (!poll || disposed || !(poll.while?.(items.value) ?? true)) return
    timer = setTimeout(() => void load({ quiet: true }), poll.everyMs)
  }

  async function load({ quiet = false }: { quiet?: boolean } = {}): Promise<void> {
    const gen = ++generation
    if (!quiet) loading.value = true
    try {
      const result = await fetchPage({ page: page.value, page_size: pageSize.value })
      if (gen !== generation) return
      items.value = Array.isArray(result) ? result : result.items
      total.value = Array.isArray(result) ? result.length : result.total
      loaded.value = true
    } catch (err) {
      if (gen === generation && !quiet) ElMessage.error(errorText(err))
    } finally {
      if (gen === generation) {
        loading.value = false
        schedule()
      }
    }
  }

  function search(): Promise<void> {
    page.value = 1
    return load()
  }

  function goTo(next: number): Promise<void> {
    page.value = next
    return load()
  }

  function resize(next: number): Promise<void> {
    pageSize.value = next
    return search()
  }

  async function change(action: () => Promise<unknown>, done: string): Promise<boolean> {
    try {
      await action()
      ElMessage.success(done)
    } catch (err) {
      ElMessage.error(errorText(err))
      return false
    }
    await load()
    return true
  }

  onScopeDispose(() => {
    disposed = true
    if (timer !== null) clearTimeout(timer)
    timer = null
  })

  return { items, total, loading, loaded, page, pageSize, load, search, goTo, resize, change }
}
