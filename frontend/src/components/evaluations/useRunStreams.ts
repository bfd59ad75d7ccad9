/**
 * One jobs WebSocket (`useJobStream`, the job page's stream) per job in `jobIds`, opened when a job
 * joins the list and closed when it leaves or the page goes. `jobs` is what each stream says now
 * (`liveJob`); `onFinal(jobId)` runs when a followed job reaches a final status (also when the first
 * snapshot already shows one: the caller's copy is stale then).
 *
 * The streams do not follow the engine log (the job page does that): their log source reads nothing.
 */
import { computed, effectScope, onScopeDispose, shallowRef, watch, type EffectScope, type Ref } from 'vue'

import { isFinal } from '@/api/jobs'
import { useJobStream, type JobStreamOptions } from '@/composables/useJobStream'
import type { LogSource } from '@/lib/jobStream'

import { liveJob, type LiveJob } from './liveRuns'

const NO_LOG: LogSource = {
  tail: async () => ({ lines: [], next_offset: 0 }),
  from: async (_id, offset) => ({ lines: [], next_offset: offset }),
}

interface Followed {
  scope: EffectScope
  stream: ReturnType<typeof useJobStream>
}

export interface RunStreamsOptions {
  onFinal: (jobId: number) => void
  /** For tests: the socket factory, token source… (the log source is always the empty one). */
  stream?: JobStreamOptions
}

export function useRunStreams(jobIds: Ref<readonly number[]>, options: RunStreamsOptions) {
  // Replaced (not mutated) when the set changes, so `jobs` recomputes; each stream's own refs make it
  // recompute on every event.
  const followed = shallowRef(new Map<number, Followed>())

  function open(jobId: number): Followed {
    // Detached: its lifetime is this list's, not whichever effect happened to be running.
    const scope = effectScope(true)
    const stream = scope.run(() => {
      const s = useJobStream(jobId, { flushMs: 0, logPollMs: 60_000, ...options.stream, logSource: NO_LOG })
      watch(
        () => s.job.value?.status,
        (now, before) => {
          if (now !== undefined && isFinal(now) && (before === undefined || !isFinal(before))) options.onFinal(jobId)
        },
      )
      return s
    })!
    return { scope, stream }
  }

  watch(
    () => [...jobIds.value].sort((a, b) => a - b).join(','),
    () => {
      const wanted = new Set(jobIds.value)
      const next = new Map<number, Followed>()
      for (const [id, entry] of followed.value) {
        if (wanted.has(id)) next.set(id, entry)
        else entry.scope.stop()
      }
      for (const id of wanted) if (!next.has(id)) next.set(id, open(id))
      followed.value = next
    },
    { immediate: true },
  )

  const jobs = computed(() => {
    const out = new Map<number, LiveJob>()
    for (const [id, { stream }] of followed.value) {
      out.set(id, liveJob(stream.state.value, stream.job.value, stream.latestMetric.value))
    }
    return out
  })

  onScopeDispose(() => {
    for (const entry of followed.value.values()) entry.scope.stop()
    followed.value = new Map()
  })

  return { jobs }
}
