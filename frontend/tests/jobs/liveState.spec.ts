// What the job page claims about a run: progress that moves with every step, an ETA of the current
// attempt only, and, once the run is final, no live reading (no ETA or throughput, no gauges with the
// last CPU sample) but the run's own summary; a peak never below the current value.
import { describe, expect, it } from 'vitest'
import { nextTick } from 'vue'

import type { JobView } from '@/api/jobs'
import ProgressCard from '@/components/jobs/detail/ProgressCard.vue'
import ResourceGauges from '@/components/jobs/detail/ResourceGauges.vue'
import { foldProgress, type LiveProgress } from '@/lib/jobStream'

import { mount } from './mount'

const job = (status: string): JobView =>
  ({ id: 3, name: 'demo', status, progress: 0.5, created_at: '2026-12-07T09:00:00Z' }) as unknown as JobView

function fold(events: { type: string; [key: string]: unknown }[]): LiveProgress | null {
  return events.reduce<LiveProgress | null>((state, event) => foldProgress(state, event), null)
}

describe('progress between logging steps', () => {
  it('moves step, ETA and throughput with every progress event and keeps the last loss', () => {
    const state = fold([
      { type: 'metric', step: 10, total_steps: 60, loss: 2.5, eta_s: 100, tokens_per_s: 900, elapsed_s: 20 },
      { type: 'progress', step: 11, total_steps: 60, progress: 11 / 60, eta_s: 98, tokens_per_s: 950, elapsed_s: 22 },
      { type: 'resource', cpu_pct: 90 },
    ])
    expect(state).toMatchObject({ step: 11, total_steps: 60, loss: 2.5, eta_s: 98, tokens_per_s: 950 })
  })

  it('drops the previous attempt’s timing when a resumed run starts loading again', () => {
    const state = fold([
      { type: 'progress', step: 40, total_steps: 100, eta_s: 600, tokens_per_s: 800, elapsed_s: 300 },
      { type: 'status', status: 'failed' },
      { type: 'status', status: 'loading_data' },
    ])
    expect(state).toMatchObject({ step: 40, total_steps: 100, eta_s: null, tokens_per_s: null, elapsed_s: null })
    // The new attempt's first progress event brings its own ETA (and no value is carried over).
    const next = foldProgress(state, { type: 'progress', step: 41, total_steps: 100, eta_s: 120, elapsed_s: 5 })
    expect(next).toMatchObject({ step: 41, eta_s: 120, elapsed_s: 5, tokens_per_s: null })
  })

  it('shows the folded step and ETA while running, and neither ETA nor throughput once final', async () => {
    const metric = { step: 11, total_steps: 60, progress: 11 / 60, eta_s: 98, tokens_per_s: 950, elapsed_s: 22 }
    const running = mount(ProgressCard, { job: job('running'), metric })
    await nextTick()
    expect(running.text('job-step')).toBe('Step 11 / 60')
    expect(running.text('job-eta')).toContain('1m 38s')
    expect(running.text('job-throughput')).toContain('950')
    running.unmount()

    const done = mount(ProgressCard, { job: job('failed'), metric })
    await nextTick()
    expect(done.text('job-step')).toBe('Step 11 / 60')
    expect(done.text('job-eta')).toBeNull()
    expect(done.text('job-throughput')).toBeNull()
    done.unmount()
  })
})

describe('resource gauges', () => {
  const last = {
    cpu_pct: 96,
    rss_mb: 900,
    peak_rss_mb: 1500,
    cpu_avg_pct: 71.6,
    gpus: [{ index: 0, util_pct: 99, mem_used_mb: 2048, mem_total_mb: 8192, mem_peak_mb: 4096, util_avg_pct: 80 }],
  }

  it('never shows a peak below the current reading while live', async () => {
    // A metric's process-only peak (300 MB) below the tree's current 900 MB must not win.
    const live = mount(ResourceGauges, { resources: { ...last, peak_rss_mb: null }, peakRssMb: 300 })
    await nextTick()
    expect(live.el.querySelector('[data-testid="gauge-cpu"]')).not.toBeNull()
    expect(live.text('gauge-rss-peak')).toBe('peak 900 MB')
    live.unmount()
  })

  it('replaces the gauges of a final run by its labelled summary', async () => {
    const final = mount(ResourceGauges, { resources: last, peakRssMb: 300, final: true })
    await nextTick()
    expect(final.el.querySelector('[data-testid="resource-gauges"]')).toBeNull()
    expect(final.el.querySelector('[data-testid="gauge-cpu"]')).toBeNull()
    expect(final.el.textContent).not.toContain('96%') // the last CPU sample is not "now" any more
    expect(final.text('resource-summary')).toContain('Over the run')
    expect(final.text('summary-rss')).toBe('1.5 GB')
    expect(final.text('summary-cpu')).toBe('72%')
    expect(final.text('summary-gpu-mem-0')).toBe('4 GB')
    expect(final.text('summary-gpu-util-0')).toBe('80%')
    final.unmount()

    const empty = mount(ResourceGauges, { resources: null, final: true })
    await nextTick()
    expect(empty.text('resource-summary')).toContain('No resource samples were recorded')
    empty.unmount()
  })
})
