import { ElMessage } from 'element-plus'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApp, effectScope } from 'vue'

import { ApiError } from '@/api/errors'
import { usePagedList, type PageOf, type Paging } from '@/composables/usePagedList'
import { i18n } from '@/i18n'

interface Row {
  id: number
}

/** A fetch the test answers by hand: each call waits until `answer` (or `fail`) is called for it. */
function manualFetch() {
  const calls: { paging: Paging; resolve: (page: PageOf<Row>) => void; reject: (err: unknown) => void }[] = []
  const fetch = vi.fn(
    (paging: Paging) =>
      new Promise<PageOf<Row>>((resolve, reject) => {
        calls.push({ paging, resolve, reject })
      }),
  )
  return { fetch, calls }
}

const rows = (...ids: number[]) => ids.map((id) => ({ id }))

afterEach(() => {
  vi.useRealTimers()
})

describe('usePagedList', () => {
  it('loads the current page and reports loading, rows, total and loaded', async () => {
    const { fetch, calls } = manualFetch()
    const list = effectScope().run(() => usePagedList(fetch, { errorText: String }))!
    expect(list.page.value).toBe(1)
    expect(list.pageSize.value).toBe(20)

    const done = list.load()
    expect(list.loading.value).toBe(true)
    expect(calls[0]!.paging).toEqual({ page: 1, page_size: 20 })
    calls[0]!.resolve({ items: rows(1, 2), total: 42 })
    await done
    expect(list.loading.value).toBe(false)
    expect(list.loaded.value).toBe(true)
    expect(list.items.value).toEqual(rows(1, 2))
    expect(list.total.value).toBe(42)
  })

  it('takes a plain array as the whole list', async () => {
    const list = effectScope().run(() => usePagedList(async () => rows(7, 8, 9), { errorText: String }))!
    await list.load()
    expect(list.items.value).toEqual(rows(7, 8, 9))
    expect(list.total.value).toBe(3)
  })

  it('goes to a page, back to page 1 on search, and to page 1 when the page size changes', async () => {
    const fetch = vi.fn(async (_paging: Paging) => ({ items: rows(1), total: 100 }))
    const list = effectScope().run(() => usePagedList(fetch, { pageSize: 10, errorText: String }))!
    await list.goTo(3)
    expect(fetch).toHaveBeenLastCalledWith({ page: 3, page_size: 10 })
    await list.search()
    expect(fetch).toHaveBeenLastCalledWith({ page: 1, page_size: 10 })
    await list.goTo(4)
    await list.resize(50)
    expect(fetch).toHaveBeenLastCalledWith({ page: 1, page_size: 50 })
    expect(list.page.value).toBe(1)
    expect(list.pageSize.value).toBe(50)
  })

  it('lets only the newest request update the rows', async () => {
    const { fetch, calls } = manualFetch()
    const list = effectScope().run(() => usePagedList(fetch, { errorText: String }))!
    const first = list.load()
    const second = list.search()
    calls[1]!.resolve({ items: rows(2), total: 1 })
    await second
    calls[0]!.resolve({ items: rows(1), total: 1 }) // the slow answer to the old query
    await first
    expect(list.items.value).toEqual(rows(2))
    expect(list.loading.value).toBe(false)
  })

  it('shows a failure as an error message and keeps the rows it had', async () => {
    const shown = vi.spyOn(ElMessage, 'error').mockImplementation(() => ({ close: () => {} }))
    let fail = false
    const fetch = async () => {
      if (fail) throw new ApiError(500, 'boom', 'The server fell over')
      return rows(1)
    }
    const list = effectScope().run(() =>
      usePagedList(fetch, { errorText: (err) => `shown: ${(err as Error).message}` }),
    )!
    await list.load()
    fail = true
    await list.load()
    expect(shown).toHaveBeenCalledWith('shown: The server fell over')
    expect(list.items.value).toEqual(rows(1))
    expect(list.loading.value).toBe(false)

    shown.mockClear()
    await list.load({ quiet: true }) // a background refresh fails quietly
    expect(shown).not.toHaveBeenCalled()
  })

  it('uses the translated server error text by default (inside a component)', async () => {
    const shown = vi.spyOn(ElMessage, 'error').mockImplementation(() => ({ close: () => {} }))
    i18n.global.locale.value = 'en'
    let list: ReturnType<typeof usePagedList<Row>> | undefined
    const app = createApp({
      setup() {
        list = usePagedList<Row>(async () => {
          throw new ApiError(403, 'not_allowed', 'Forbidden by the server')
        })
        return () => null
      },
    })
    app.use(i18n).mount(document.createElement('div'))
    await list!.load()
    expect(shown).toHaveBeenCalledTimes(1)
    expect(typeof shown.mock.calls[0]![0]).toBe('string')
    app.unmount()
  })

  it('polls quietly while the condition holds, and stops when the scope ends', async () => {
    vi.useFakeTimers()
    let running = true
    const fetch = vi.fn(async () => rows(running ? 1 : 2))
    const scope = effectScope()
    const list = scope.run(() =>
      usePagedList(fetch, { errorText: String, poll: { everyMs: 1000, while: (items) => items[0]?.id === 1 } }),
    )!
    await list.load()
    expect(fetch).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(1000)
    expect(fetch).toHaveBeenCalledTimes(2)
    expect(list.loading.value).toBe(false) // background refreshes show no spinner

    running = false
    await vi.advanceTimersByTimeAsync(1000) // answers 2: the condition no longer holds
    expect(fetch).toHaveBeenCalledTimes(3)
    await vi.advanceTimersByTimeAsync(5000)
    expect(fetch).toHaveBeenCalledTimes(3)

    running = true
    await list.load()
    expect(fetch).toHaveBeenCalledTimes(4)
    scope.stop()
    await vi.advanceTimersByTimeAsync(5000)
    expect(fetch).toHaveBeenCalledTimes(4)
  })
})

describe('usePagedList.change', () => {
  it('runs the change, says it is done and reloads; a failure is shown and nothing reloads', async () => {
    const success = vi.spyOn(ElMessage, 'success').mockImplementation(() => ({ close: () => {} }))
    const failure = vi.spyOn(ElMessage, 'error').mockImplementation(() => ({ close: () => {} }))
    let ids = [1, 2]
    const fetch = vi.fn(async () => rows(...ids))
    const list = effectScope().run(() => usePagedList(fetch, { errorText: (err) => (err as Error).message }))!
    await list.load()

    const ok = await list.change(async () => {
      ids = [2]
    }, 'Deleted.')
    expect(ok).toBe(true)
    expect(success).toHaveBeenCalledWith('Deleted.')
    expect(list.items.value).toEqual(rows(2))
    expect(fetch).toHaveBeenCalledTimes(2)

    const refused = await list.change(() => Promise.reject(new ApiError(409, 'in_use', 'Still in use')), 'Deleted.')
    expect(refused).toBe(false)
    expect(failure).toHaveBeenCalledWith('Still in use')
    expect(fetch).toHaveBeenCalledTimes(2)
  })
})
