import { defineStore } from 'pinia'
import { reactive, shallowReactive } from 'vue'

import { datasetUploadTransport, type Dataset } from '@/api/datasets'
import { sha256Hasher } from '@/lib/upload/sha256'
import { createUploadTask, uploadLimits, type UploadMeta, type UploadTask } from '@/lib/upload/task'

export interface UploadEntry {
  key: number
  task: UploadTask<Dataset>
}

/**
 * Uploads in progress for this tab. Kept in a store (not in the dialog) so an upload keeps
 * going, and can be paused or cancelled, while the user looks at other pages.
 */
export const useUploadsStore = defineStore('uploads', () => {
  const entries = shallowReactive<UploadEntry[]>([])
  let nextKey = 1

  function add(file: File, meta: UploadMeta): UploadEntry {
    const task = createUploadTask(file, meta, datasetUploadTransport, sha256Hasher, {
      ...uploadLimits(),
      // Reactive, so the upload list follows the progress.
      observe: (state) => reactive(state) as typeof state,
    })
    const entry = { key: nextKey++, task }
    entries.unshift(entry)
    void task.start()
    return entry
  }

  function dismiss(key: number): void {
    const index = entries.findIndex((e) => e.key === key)
    if (index < 0) return
    const { task } = entries[index]!
    if (!['done', 'cancelled', 'error'].includes(task.state.status)) void task.cancel()
    entries.splice(index, 1)
  }

  return { entries, add, dismiss }
})
