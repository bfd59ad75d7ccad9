/**
 * What the job page's buttons do: start, stop, cancel, resume (from the latest or a named
 * checkpoint), pin, clone (into the form, or as a draft on the server), delete. Each action that
 * returns the job row hands it to `onJob`, so the page shows the new status before the stream does.
 */
import { ElMessage } from 'element-plus'
import { ref, type Ref } from 'vue'
import { useI18n } from 'vue-i18n'
import { useRouter } from 'vue-router'

import { jobsApi, type JobView } from '@/api/jobs'
import { useConfirm } from '@/composables/useConfirm'
import { useErrorText } from '@/composables/useErrorText'
import { shortName } from '@/lib/names'

export function useJobActions(jobId: Ref<number>, job: Ref<JobView | null>, onJob: (job: JobView) => void) {
  const { t } = useI18n()
  const router = useRouter()
  const errorText = useErrorText()
  const confirm = useConfirm()
  /** The action in flight (its button spins). */
  const busy = ref<string | null>(null)

  /** Run an action that returns the job; show its error; keep the page's job up to date. */
  async function act(name: string, call: () => Promise<JobView | void>, done?: string): Promise<void> {
    busy.value = name
    try {
      const result = await call()
      if (result) onJob(result)
      if (done) ElMessage.success(done)
    } catch (err) {
      ElMessage.error(errorText(err))
    } finally {
      busy.value = null
    }
  }

  const start = () => act('start', () => jobsApi.start(jobId.value), t('jobPage.done.started'))
  const stop = () => act('stop', () => jobsApi.stop(jobId.value), t('jobPage.done.stopping'))
  async function cancel(): Promise<void> {
    if (await confirm(t('jobPage.confirm.cancel'), t('jobPage.action.cancel')))
      await act('cancel', () => jobsApi.cancel(jobId.value), t('jobPage.done.cancelled'))
  }
  const resume = (checkpoint: string | null = null) =>
    act('resume', () => jobsApi.resume(jobId.value, checkpoint), t('jobPage.done.resumed'))
  const togglePin = () => act('pin', () => jobsApi.pin(jobId.value, !job.value?.pinned))

  /** Clone into the form: an editable copy; nothing is saved until the user starts or saves it. */
  function cloneToForm(): void {
    void router.push({ name: 'job-new', query: { clone: String(jobId.value) } })
  }

  /** Clone on the server (POST /clone): a draft with the same spec and pinned dataset version. */
  async function cloneAsDraft(): Promise<void> {
    busy.value = 'clone'
    try {
      const copy = await jobsApi.clone(jobId.value)
      ElMessage.success(t('jobPage.done.cloned'))
      void router.push({ name: 'job-detail', params: { id: copy.id } })
    } catch (err) {
      ElMessage.error(errorText(err))
    } finally {
      busy.value = null
    }
  }

  function applySuggestedFix(): void {
    void router.push({ name: 'job-new', query: { fromJob: String(jobId.value), patch: 'suggested' } })
  }

  async function remove(): Promise<void> {
    const current = job.value
    if (
      !current ||
      !(await confirm(t('jobPage.confirm.delete', { name: shortName(current.name) }), t('common.delete')))
    )
      return
    try {
      await jobsApi.remove(current.id)
      ElMessage.success(t('jobPage.done.deleted'))
      void router.push({ name: 'jobs' })
    } catch (err) {
      ElMessage.error(errorText(err))
    }
  }

  return { busy, start, stop, cancel, resume, togglePin, cloneToForm, cloneAsDraft, applySuggestedFix, remove }
}
