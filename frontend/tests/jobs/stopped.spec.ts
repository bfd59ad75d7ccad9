// The `stopped` status (a graceful stop's end, resumable) as the job pages show it: label and colour
// in both languages, Resume offered instead of Stop / Cancel, and the note naming the checkpoint.
import ElementPlus from 'element-plus'
import { afterEach, describe, expect, it } from 'vitest'
import { createApp, h, nextTick, type App } from 'vue'
import { createMemoryHistory, createRouter } from 'vue-router'

import { canCancel, canDelete, canResume, canStop, isFinal, type Job } from '@/api/jobs'
import EventsTimeline from '@/components/jobs/detail/EventsTimeline.vue'
import JobHeader from '@/components/jobs/detail/JobHeader.vue'
import StoppedNotice from '@/components/jobs/detail/StoppedNotice.vue'
import { progressStatus, statusTag } from '@/components/jobs/list/listing'
import { i18n } from '@/i18n'

let app: App | null = null

afterEach(() => {
  app?.unmount()
  app = null
  document.body.innerHTML = ''
  i18n.global.locale.value = 'en'
})

function mount(component: Parameters<typeof h>[0], props: Record<string, unknown>): HTMLElement {
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [{ path: '/', component: { template: '<div/>' } }],
  })
  const el = document.createElement('div')
  document.body.appendChild(el)
  app = createApp({ render: () => h(component, props) })
  app.use(router).use(i18n).use(ElementPlus).mount(el)
  return el
}

const stoppedJob = {
  id: 7,
  owner_id: 1,
  name: 'paused run',
  status: 'stopped',
  priority: 0,
  spec: {},
  dataset_id: 1,
  dataset_version_id: 1,
  executor: 'local',
  exit_code: 0,
  error: {
    code: 'stopped',
    message: 'Stopped at step 5; resume it from checkpoint-5.',
    details: { step: 5, checkpoint: 'checkpoint-5' },
  },
  progress: 0.1,
  last_event_seq: 40,
  created_at: '2026-11-22T08:00:00Z',
  updated_at: '2026-11-22T08:01:00Z',
  queued_at: '2026-11-22T08:00:00Z',
  started_at: '2026-11-22T08:00:01Z',
  finished_at: '2026-11-22T08:01:00Z',
  attempt: 1,
  resume_from: null,
} as unknown as Job

describe('the stopped status', () => {
  it('is final, resumable, deletable, amber, and neither stoppable nor cancellable', () => {
    expect([isFinal('stopped'), canResume('stopped'), canDelete('stopped')]).toEqual([true, true, true])
    expect([canStop('stopped'), canCancel('stopped')]).toEqual([false, false])
    expect([canResume('succeeded'), canResume('cancelled'), canResume('running')]).toEqual([false, true, false])
    expect([statusTag('stopped'), progressStatus('stopped')]).toEqual(['warning', 'warning'])
  })

  it('shows its own label in the job header (not "Cancelled") and offers Resume instead of Stop', async () => {
    const props = {
      job: stoppedJob,
      connection: 'closed',
      busy: null,
      checkpoints: [{ name: 'checkpoint-5', step: 5 }],
      canResume: canResume(stoppedJob.status),
    }
    let el = mount(JobHeader, props)
    await nextTick()
    const tag = el.querySelector('[data-testid="job-status"]')!
    expect(tag.getAttribute('data-status')).toBe('stopped')
    expect(tag.textContent!.trim()).toBe('Stopped')
    expect(tag.className).toContain('el-tag--warning')
    expect(el.querySelector('[data-testid="job-resume"]')).not.toBeNull()
    expect(el.querySelector('[data-testid="job-stop"]')).toBeNull()
    expect(el.querySelector('[data-testid="job-cancel"]')).toBeNull()
    app!.unmount()

    i18n.global.locale.value = 'zh-CN'
    el = mount(JobHeader, props)
    await nextTick()
    expect(el.querySelector('[data-testid="job-status"]')!.textContent!.trim()).toBe('已停止')
    expect(i18n.global.t('jobs.status.stopped')).toBe('已停止')
    expect(i18n.global.t('jobs.notifications.kinds.job.stopped')).toBe('已停止')
  })

  it('says which checkpoint Resume continues from, or that there is none', async () => {
    let el = mount(StoppedNotice, { error: stoppedJob.error })
    await nextTick()
    const notice = () => el.querySelector('[data-testid="job-stopped-notice"]')!.textContent
    expect(notice()).toContain('Stopped at step 5. Resume continues from checkpoint-5.')
    app!.unmount()

    el = mount(StoppedNotice, { error: { code: 'stopped', details: { step: 3, checkpoint: null } } })
    await nextTick()
    expect(notice()).toContain('nothing to resume')
    app!.unmount()

    // The engine's own word for the end of a stop is `cancelled`; the timeline says what it was.
    const events = [{ seq: 9, type: 'status', ts: 1_700_000_000, status: 'cancelled', message: 'stopped at step 5' }]
    el = mount(EventsTimeline, { events })
    await nextTick()
    expect(el.querySelector('[data-testid="timeline-item"]')!.textContent).toBe('Stopped')
  })
})
