import ElementPlus from 'element-plus'
import { describe, expect, it } from 'vitest'
import { createApp, h, nextTick, ref } from 'vue'

import { parseIds } from '@/components/jobs/detail/compare'
import EventsTimeline from '@/components/jobs/detail/EventsTimeline.vue'
import FailureDiagnosis from '@/components/jobs/detail/FailureDiagnosis.vue'
import LogViewer from '@/components/jobs/detail/LogViewer.vue'
import { atBottom, highlight, matchingLines, visibleWindow } from '@/components/jobs/detail/logs'
import { ema, formatDuration, formatNumber, pairs, percent } from '@/components/jobs/detail/series'
import { diffSpecs, flatten, multiDiff, showValue, toYamlText, unifiedLines } from '@/components/jobs/detail/specDiff'
import { i18n } from '@/i18n'
import en from '@/i18n/locales/jobPage.en'
import zh from '@/i18n/locales/jobPage.zh-CN'

import { mount } from './mount'

describe('chart series', () => {
  it('smooths with a debiased EMA and keeps gaps', () => {
    expect(ema([1, 2, 3], 0)).toEqual([1, 2, 3])
    const smooth = ema([2, 2, null, 2], 0.9)
    // Debiasing: a constant series stays constant from the first point on.
    expect(smooth[0]).toBeCloseTo(2)
    expect(smooth[1]).toBeCloseTo(2)
    expect(smooth[2]).toBeNull()
    expect(smooth[3]).toBeCloseTo(2)
    const noisy = ema([1, 0, 1, 0, 1, 0], 0.8)
    expect(Math.max(...(noisy as number[]).slice(2)) - Math.min(...(noisy as number[]).slice(2))).toBeLessThan(0.5)
  })

  it('pairs steps with values, skipping missing ones and non-positive values on a log axis', () => {
    expect(pairs([1, 2, 3], [0.5, null, 0])).toEqual([
      [1, 0.5],
      [3, 0],
    ])
    expect(pairs([1, 2, 3], [0.5, null, 0], true)).toEqual([[1, 0.5]])
  })

  it('formats durations, percentages and numbers', () => {
    expect(formatDuration(3725)).toBe('1h 2m 5s')
    expect(formatDuration(65)).toBe('1m 5s')
    expect(formatDuration(4.4)).toBe('4s')
    expect(formatDuration(null)).toBe('—')
    expect(percent(0.4567)).toBe(45.7)
    expect(percent(2)).toBe(100)
    expect(percent(undefined)).toBe(0)
    expect(formatNumber(0.00002)).toBe('2.00e-5')
    expect(formatNumber(1.234567)).toBe('1.235')
  })
})

describe('spec diff', () => {
  const a = { model_name_or_path: 'demo-tiny', learning_rate: 0.0001, lora: { r: 8, alpha: 16 }, tags: ['x'] }
  const b = { model_name_or_path: 'demo-tiny', learning_rate: 0.0002, lora: { r: 8 }, max_steps: 50, tags: ['x'] }

  it('flattens nested keys and diffs key by key', () => {
    expect(flatten(a)).toEqual({
      model_name_or_path: 'demo-tiny',
      learning_rate: 0.0001,
      'lora.r': 8,
      'lora.alpha': 16,
      tags: ['x'],
    })
    const rows = diffSpecs(a, b)
    const kinds = Object.fromEntries(rows.map((r) => [r.key, r.kind]))
    expect(kinds).toEqual({
      learning_rate: 'changed',
      'lora.alpha': 'removed',
      'lora.r': 'same',
      max_steps: 'added',
      model_name_or_path: 'same',
      tags: 'same',
    })
    expect(unifiedLines(rows.filter((r) => r.kind !== 'same'))).toEqual([
      { sign: '-', text: 'learning_rate: 0.0001' },
      { sign: '+', text: 'learning_rate: 0.0002' },
      { sign: '-', text: 'lora.alpha: 16' },
      { sign: '+', text: 'max_steps: 50' },
    ])
  })

  it('compares several specs, telling a missing key from a null one', () => {
    const rows = multiDiff([{ a: 1, b: null }, { a: 1 }, { a: 2, b: null }])
    expect(rows).toEqual([
      { key: 'a', values: [1, 1, 2], differs: true },
      { key: 'b', values: [null, undefined, null], differs: true },
    ])
    expect(multiDiff([{ a: 1 }, { a: 1 }])[0]!.differs).toBe(false)
    expect(showValue(undefined)).toBe('')
    expect(showValue({ r: 1 })).toBe('{"r":1}')
  })

  it('renders readable YAML, quoting what YAML would misread', () => {
    expect(
      toYamlText({
        stage: 'sft',
        lr: 0.001,
        flag: 'true',
        name: 'a: b',
        lora: { r: 8 },
        targets: ['q_proj', 'v_proj'],
        none: null,
      }),
    ).toBe(
      [
        'stage: sft',
        'lr: 0.001',
        'flag: "true"',
        'name: "a: b"',
        'lora:',
        '  r: 8',
        'targets:',
        '  - q_proj',
        '  - v_proj',
        'none: null',
      ].join('\n'),
    )
  })

  it('reads ids from the compare URL', () => {
    expect(parseIds('3,1,x,3, 2')).toEqual([3, 1, 2])
    expect(parseIds(['4', '5'])).toEqual([4, 5])
    expect(parseIds(undefined)).toEqual([])
  })
})

describe('log viewer', () => {
  it('searches, highlights without markup and windows the rows', () => {
    const lines = ['loading model', 'step 1 loss 2.0', 'Step 2 loss 1.5', 'saving']
    expect(matchingLines(lines, 'step')).toEqual([1, 2])
    expect(matchingLines(lines, '  ')).toEqual([0, 1, 2, 3])
    expect(highlight('<b>Step</b> step', 'step')).toEqual([
      { text: '<b>', hit: false },
      { text: 'Step', hit: true },
      { text: '</b> ', hit: false },
      { text: 'step', hit: true },
    ])
    expect(visibleWindow(0, 360, 18, 10_000, 20)).toEqual({ start: 0, end: 40 })
    expect(visibleWindow(18_000, 360, 18, 10_000, 20)).toEqual({ start: 980, end: 1040 })
    expect(visibleWindow(18_000, 360, 18, 1005, 20)).toEqual({ start: 980, end: 1005 })
    expect(atBottom(640, 360, 1000)).toBe(true)
    expect(atBottom(100, 360, 1000)).toBe(false)
  })

  it('renders only the visible rows of a long log', async () => {
    const lines = ref(Array.from({ length: 20_000 }, (_, i) => `line ${i} ${i % 100 === 0 ? 'checkpoint' : ''}`))
    const el = document.createElement('div')
    document.body.appendChild(el)
    i18n.global.locale.value = 'en'
    const app = createApp({ render: () => h(LogViewer, { lines: lines.value, height: 360 }) })
    app.use(i18n).use(ElementPlus).mount(el)
    await nextTick()
    const rendered = el.querySelectorAll('[data-testid="log-line"]').length
    expect(rendered).toBeGreaterThan(0)
    expect(rendered).toBeLessThan(200)
    expect(el.querySelector('[data-testid="log-viewer"]')!.getAttribute('data-lines')).toBe('20000')

    const search = el.querySelector<HTMLElement>('[data-testid="log-search"]')!
    const input = (search.tagName === 'INPUT' ? search : search.querySelector('input')) as HTMLInputElement
    input.value = 'checkpoint'
    input.dispatchEvent(new Event('input'))
    await nextTick()
    expect(el.querySelector('[data-testid="log-match-count"]')!.textContent).toContain('200')
    app.unmount()
    el.remove()
  })
})

describe('failure and events', () => {
  it('shows the diagnosis, the suggested change and the last log lines, and offers the fix', async () => {
    let fixed = 0
    const { el, unmount } = mount(FailureDiagnosis, {
      error: {
        code: 'oom',
        message: 'Out of memory',
        suggestion: 'Lower the batch size.',
        details: { spec_patch: { per_device_train_batch_size: 1, gradient_accumulation_steps: 8 } },
        last_log_lines: ['Traceback …', 'torch.OutOfMemoryError'],
      },
      canFix: true,
      onFix: () => fixed++,
    })
    await nextTick()
    expect(el.querySelector('[data-testid="job-diagnosis"]')!.textContent).toContain('Out of memory')
    expect(el.querySelector('[data-testid="job-suggestion"]')!.textContent).toContain('Lower the batch size.')
    expect(el.textContent).toContain('per_device_train_batch_size: 1')
    expect(el.querySelector('[data-testid="job-last-lines"]')!.textContent).toContain('torch.OutOfMemoryError')
    el.querySelector<HTMLButtonElement>('[data-testid="job-suggested-fix"]')!.click()
    expect(fixed).toBe(1)
    unmount()

    const without = mount(FailureDiagnosis, { error: { code: 'x', message: 'boom' }, canFix: false })
    await nextTick()
    expect(without.el.querySelector('[data-testid="job-suggested-fix"]')).toBeNull()
    without.unmount()
  })

  it('lists status changes, checkpoints (by folder name) and errors with their suggestion, newest first', async () => {
    const { el, unmount } = mount(EventsTimeline, {
      events: [
        { seq: 1, type: 'status', ts: '2026-12-07T09:00:00+00:00', status: 'training' },
        {
          seq: 5,
          type: 'checkpoint',
          ts: '2026-12-07T09:00:10+00:00',
          step: 5,
          path: '/srv/data/runs/1/checkpoints/checkpoint-5',
        },
        {
          seq: 9,
          type: 'error',
          ts: '2026-12-07T09:00:20+00:00',
          code: 'nan_loss',
          message: 'Loss became NaN',
          suggestion: 'Lower the learning rate.',
        },
      ],
    })
    await nextTick()
    const items = [...el.querySelectorAll('[data-testid="timeline-item"]')].map((e) => e.textContent)
    expect(items).toEqual(['Error: nan_loss', 'Checkpoint at step 5', 'Training'])
    expect(el.textContent).toContain('checkpoint-5')
    expect(el.textContent).not.toContain('/srv/data')
    expect(el.textContent).toContain('Lower the learning rate.')
    // Each event's time (an ISO string from the API) as a clock time, never an epoch misread.
    const times = [...el.querySelectorAll('.el-timeline-item__timestamp')].map((e) => e.textContent?.trim())
    expect(times).toHaveLength(3)
    for (const time of times) expect(time).toMatch(/^\d{1,2}:\d{2}:\d{2}/)
    unmount()
  })
})

describe('jobPage locale', () => {
  it('has the same keys in English and Chinese', () => {
    const keys = (o: object, p = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) => (typeof v === 'object' && v ? keys(v, `${p}${k}.`) : [`${p}${k}`]))
    expect(keys(zh).sort()).toEqual(keys(en).sort())
  })
})
