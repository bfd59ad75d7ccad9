/**
 * The evaluation page's parts mounted on their own: the results table (best marked only where a model
 * wins, deltas against the baseline coloured by direction) and the sample browser (the query it sends,
 * the word-level diff against the baseline's answer).
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { nextTick } from 'vue'

import type { SamplePage } from '@/api/evaluations'
import SampleBrowser from '@/components/evaluations/SampleBrowser.vue'
import ScoreTable from '@/components/evaluations/ScoreTable.vue'
import type { ScoreRow } from '@/components/evaluations/scores'

import { mount } from '../jobs/mount'

vi.setConfig({ testTimeout: 30_000 })

const flush = async () => {
  for (let i = 0; i < 12; i++) {
    await Promise.resolve()
    await nextTick()
  }
}

let unmount: (() => void) | null = null
afterEach(() => {
  unmount?.()
  unmount = null
  vi.unstubAllGlobals()
})

const rows: ScoreRow[] = [
  { id: 1, model: 'demo-tiny', metrics: { 'rouge-l': 20, perplexity: 12 } },
  { id: 2, model: 'ft:demo-tiny:lf:3', metrics: { 'rouge-l': 31.5, perplexity: 14 } },
]

describe('ScoreTable', () => {
  it('marks the best per metric in its direction and shows deltas against the baseline', async () => {
    const view = mount(ScoreTable, { rows, keys: ['rouge-l', 'perplexity'], baselineId: 1 })
    unmount = view.unmount
    await flush()
    const cells = (key: string) => [...view.el.querySelectorAll(`[data-testid="eval-score-${key}"]`)]
    expect(cells('rouge-l').map((c) => c.getAttribute('data-best'))).toEqual(['false', 'true'])
    // Perplexity: lower is better, so the baseline wins it.
    expect(cells('perplexity').map((c) => c.getAttribute('data-best'))).toEqual(['true', 'false'])
    const deltas = [...view.el.querySelectorAll('[data-testid="eval-delta"]')]
    expect(deltas.map((d) => d.textContent!.trim())).toEqual(['+11.5', '+2'])
    expect(deltas.map((d) => d.classList.contains('up'))).toEqual([true, false])
    expect(deltas[1]!.classList.contains('down')).toBe(true)
    expect(view.el.textContent).toContain('baseline')
  })
})

const PAGE: SamplePage = {
  items: [
    {
      index: 0,
      prompt: 'Who are you?',
      label: 'I am LoRAForge.',
      answers: [
        {
          run_id: 1,
          position: 0,
          model: 'demo-tiny',
          predict: 'I am a model.',
          scores: { 'rouge-l': 40 },
          latency_s: 0.2,
          completion_tokens: 4,
        },
        {
          run_id: 2,
          position: 1,
          model: 'tuned',
          predict: 'I am LoRAForge.',
          scores: { 'rouge-l': 100 },
          latency_s: 0.3,
          completion_tokens: 4,
          judge: { score: 9, reason: 'Right.' },
        },
      ],
    },
  ],
  total: 1,
  page: 1,
  page_size: 5,
  metric: 'rouge-l',
  baseline: 0,
}

describe('SampleBrowser', () => {
  it('asks for a page against the baseline and highlights what differs from its answer', async () => {
    const urls: URL[] = []
    vi.stubGlobal(
      'fetch',
      vi.fn(async (input: Request) => {
        urls.push(new URL(input.url))
        return new Response(JSON.stringify(PAGE), { status: 200, headers: { 'Content-Type': 'application/json' } })
      }),
    )
    const view = mount(SampleBrowser, {
      evaluationId: 7,
      runs: [],
      keys: ['rouge-l'],
      baseline: 0,
    })
    unmount = view.unmount
    await flush()
    expect(urls[0]!.pathname).toBe('/api/evaluations/7/samples')
    expect(Object.fromEntries(urls[0]!.searchParams)).toMatchObject({ baseline: '0', metric: 'rouge-l', sort: 'index' })

    const answers = [...view.el.querySelectorAll('[data-testid="eval-answer"]')]
    expect(answers).toHaveLength(2)
    // The baseline's answer is plain; the other's new words are marked.
    expect(answers[0]!.querySelectorAll('[data-testid="diff-add"]')).toHaveLength(0)
    const added = [...answers[1]!.querySelectorAll('[data-testid="diff-add"]')].map((n) => n.textContent)
    expect(added).toEqual(['LoRAForge'])
    expect(answers[1]!.textContent).toContain('Judge: 9')
    expect(answers[1]!.textContent).toContain('ROUGE-L 100')
  })
})
