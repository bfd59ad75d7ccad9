import { describe, expect, it, vi } from 'vitest'

import type { ModelScore } from '@/api/modelScores'
import { deltaArrow, deltaTone, formatDelta, scoreDirection, scoreKeys } from '@/lib/scoreDelta'
import ModelDetailView from '@/views/models/ModelDetailView.vue'
import ModelsView from '@/views/models/ModelsView.vue'

import { MODEL, VERSION, byTestId, cleanUpAfterEach, fakeServer, flush, json, mountView, settle } from './harness'

vi.setConfig({ testTimeout: 30_000 })
cleanUpAfterEach()

describe('score deltas', () => {
  it('colours a change by whether it is better, lower being better for perplexity and loss', () => {
    expect(deltaTone('bleu-4', 2.5)).toBe('better')
    expect(deltaTone('bleu-4', -0.1)).toBe('worse')
    expect(deltaTone('multiple_choice', 12)).toBe('better')
    expect(deltaTone('perplexity', -3)).toBe('better')
    expect(deltaTone('perplexity', 3)).toBe('worse')
    expect(deltaTone('loss', 0.2)).toBe('worse')
    expect(deltaTone('latency_s', -0.5)).toBe('better')
    expect(deltaTone('exact_match', 0)).toBe('same')
    expect(deltaTone('exact_match', null)).toBe('none')
    expect(deltaTone('exact_match', Number.NaN)).toBe('none')
    // A direction the server gives wins over the built-in rule.
    expect(deltaTone('custom', -1, { custom: 'lower' })).toBe('better')
    expect(scoreDirection('perplexity')).toBe('lower')
    expect(scoreDirection('judge_score')).toBe('higher')
  })

  it('shows the change itself with an arrow and a sign', () => {
    expect(deltaArrow(1)).toBe('↑')
    expect(deltaArrow(-1)).toBe('↓')
    expect(deltaArrow(0)).toBe('')
    expect(formatDelta(1.23456)).toBe('+1.235')
    expect(formatDelta(-0.5)).toBe('−0.5')
    expect(formatDelta(0)).toBe('±0')
    expect(formatDelta(null)).toBe('')
  })

  it('orders keys as the engine writes them, other keys after by name, numbers only', () => {
    expect(scoreKeys({ perplexity: 3, 'rouge-l': 1, zeta: 2, 'bleu-4': 4, alpha: 1, note: 'x' })).toEqual([
      'bleu-4',
      'rouge-l',
      'perplexity',
      'alpha',
      'zeta',
    ])
  })
})

const SCORE: ModelScore = {
  evaluation_id: 77,
  evaluation_name: 'tiny run before/after',
  dataset: { id: 4, name: 'forge-demo' },
  dataset_version: { id: 9, number: 1 },
  run_id: 301,
  metrics: { 'bleu-4': 12.5, perplexity: 8.25 },
  base: { model: 'demo-tiny', run_id: 300, metrics: { 'bleu-4': 10, perplexity: 9 } },
  delta: { 'bleu-4': 2.5, perplexity: -0.75 },
  created_at: '2026-12-06T10:00:00Z',
}

function detailServer(items: ModelScore[]) {
  return fakeServer((req) => {
    if (req.path === '/api/models/5') return json(200, MODEL)
    if (req.path === '/api/models/5/versions') return json(200, { items: [VERSION] })
    if (req.path === '/api/models/versions/21/scores') return json(200, { items })
    return undefined
  })
}

describe('model version scores', () => {
  it('lists each evaluation with its test set, values and deltas against the base, linked', async () => {
    const seen = detailServer([SCORE, { ...SCORE, evaluation_id: 78, run_id: 302, base: null, delta: null }])
    const { el } = await mountView(ModelDetailView, '/models/5')
    await flush()
    expect(seen.some((r) => r.path === '/api/models/versions/21/scores')).toBe(true)
    const link = el.querySelector('[data-testid="model-score-evaluation-77"]')!
    expect(link.getAttribute('href')).toBe('/evaluations/77')
    expect(el.querySelector('[data-testid="model-scores-table"]')!.textContent).toContain('forge-demo · v1')
    // BLEU went up (better, green); perplexity went down (also better).
    const bleu = el.querySelector('[data-testid="model-score-delta-301-bleu-4"]')!
    expect(bleu.getAttribute('data-tone')).toBe('better')
    expect(bleu.textContent).toContain('↑ +2.5')
    const ppl = el.querySelector('[data-testid="model-score-delta-301-perplexity"]')!
    expect(ppl.classList.contains('better')).toBe(true)
    expect(ppl.textContent).toContain('↓ −0.75')
    // Without a base in the evaluation: values, no delta.
    expect(el.querySelector('[data-testid="model-score-302-bleu-4"]')!.textContent).toContain('12.5')
    expect(el.querySelector('[data-testid="model-score-delta-302-bleu-4"]')).toBeNull()
    expect(el.textContent).toContain('no base model in this evaluation')
  })

  it('offers to evaluate a version that has no scores yet', async () => {
    detailServer([])
    const { el, router } = await mountView(ModelDetailView, '/models/5')
    await flush()
    expect(el.querySelector('[data-testid="model-scores-empty"]')).not.toBeNull()
    ;(byTestId('model-scores-evaluate-empty') as HTMLElement).click()
    await settle()
    expect(router.currentRoute.value.path).toBe('/evaluations/new')
    expect(router.currentRoute.value.query.models).toBe('ft:demo-tiny:lf:12@v1')
  })
})

describe('models list actions', () => {
  const OTHER = { ...MODEL, id: 6, name: 'qwen-base', kind: 'base' as const }

  it('evaluates one model from its row and compares 2 to 8 selected ones', async () => {
    fakeServer((req) => (req.path === '/api/models' ? json(200, { items: [MODEL, OTHER], total: 2 }) : undefined))
    const { el, router } = await mountView(ModelsView)
    ;(byTestId('model-evaluate-6') as HTMLElement).click()
    await settle()
    expect(router.currentRoute.value.fullPath).toBe('/evaluations/new?models=qwen-base')

    const compare = () => byTestId('models-compare') as HTMLButtonElement
    expect(compare().disabled).toBe(true)
    const boxes = () => [...el.querySelectorAll<HTMLInputElement>('.el-table__body .el-checkbox input')]
    boxes()[0]!.click()
    await flush()
    expect(compare().disabled).toBe(true) // one model is not a comparison
    boxes()[1]!.click()
    await flush()
    expect(compare().disabled).toBe(false)
    expect(compare().textContent).toContain('Compare (2)')
    compare().click()
    await settle()
    expect(router.currentRoute.value.path).toBe('/evaluations/new')
    expect(router.currentRoute.value.query.models).toBe('ft:demo-tiny:lf:12,qwen-base')
  })
})
