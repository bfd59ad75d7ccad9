import { describe, expect, it } from 'vitest'

import { sampleView, rowNumber } from '@/components/datasets/sample'
import { statsView, toBars } from '@/components/datasets/stats'
import { compareView, recipeKind, reportView } from '@/components/datasets/versions'

describe('sample rendering', () => {
  it('renders the normalized form as chat turns', () => {
    const view = sampleView({
      row: 3,
      system: 'Be brief.',
      prompt: [{ role: 'user', content: 'Hi' }],
      response: [{ role: 'assistant', content: 'Hello!' }],
      label: null,
    })
    expect(view).toEqual({
      kind: 'chat',
      label: null,
      turns: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
      ],
    })
    expect(rowNumber({ row: 3 }, 1)).toBe(3)
    expect(rowNumber({}, 7)).toBe(7)
  })

  it('renders ShareGPT, alpaca, preference pairs and plain text', () => {
    expect(
      sampleView({
        conversations: [
          { from: 'human', value: 'q' },
          { from: 'gpt', value: 'a' },
        ],
      }),
    ).toMatchObject({
      kind: 'chat',
      turns: [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a' },
      ],
    })
    expect(sampleView({ instruction: 'Add', input: '1+1', output: '2' })).toMatchObject({
      kind: 'chat',
      turns: [
        { role: 'user', content: 'Add\n\n1+1' },
        { role: 'assistant', content: '2' },
      ],
    })
    expect(sampleView({ prompt: 'p', chosen: 'good', rejected: 'bad' })).toMatchObject({
      kind: 'preference',
      chosen: [{ role: 'assistant', content: 'good' }],
      rejected: [{ role: 'assistant', content: 'bad' }],
    })
    expect(sampleView({ text: 'just text' })).toEqual({ kind: 'text', text: 'just text' })
    const pair = {
      row: 1,
      prompt: [{ role: 'user', content: 'q' }],
      response: [
        { role: 'assistant', content: 'good' },
        { role: 'assistant', content: 'bad' },
      ],
      system: '',
    }
    expect(sampleView(pair, 'preference')).toMatchObject({
      kind: 'preference',
      chosen: [{ role: 'assistant', content: 'good' }],
      rejected: [{ role: 'assistant', content: 'bad' }],
    })
    expect(
      sampleView({ row: 1, prompt: [{ role: 'user', content: 'doc' }], response: [], system: '' }, 'text'),
    ).toEqual({ kind: 'text', text: 'doc' })
    expect(sampleView({ a: 1, b: 'x' })).toEqual({
      kind: 'fields',
      fields: [
        ['a', '1'],
        ['b', 'x'],
      ],
    })
  })
})

describe('statistics', () => {
  it('reads the histogram shapes', () => {
    expect(
      toBars({
        histogram: [
          { min: 0, max: 16, count: 2 },
          { min: 16, max: null, count: 1 },
        ],
      }),
    ).toEqual([
      { label: '0–16', count: 2 },
      { label: '16+', count: 1 },
    ])
    expect(toBars({ edges: [0, 10, 20], counts: [4, 5] })).toEqual([
      { label: '0–10', count: 4 },
      { label: '10–20', count: 5 },
    ])
    expect(toBars({ '1': 3, '2': 4 })).toEqual([
      { label: '1', count: 3 },
      { label: '2', count: 4 },
    ])
  })

  it('summarizes a stats answer', () => {
    const view = statsView({
      rows: 10,
      characters: 500,
      tokens: {
        total: 125,
        mean: 12.5,
        max: 40,
        histogram: [{ min: 0, max: 16, count: 10 }],
        approximate: true,
        tokenizer: null,
      },
      turns: { '2': 9, '4': 1 },
      roles: { user: 11, assistant: 11 },
      duplicates: { rows: 2, groups: 1 },
      empty_fields: { response: 1, 'prompt.user': 2 },
    })
    expect(view.rows).toBe(10)
    expect(view.approximate).toBe(true)
    expect(view.duplicates).toBe(2)
    expect(view.empty).toBe(3)
    expect(view.turns).toHaveLength(2)
    expect(view.roles).toEqual([
      { name: 'user', value: 11 },
      { name: 'assistant', value: 11 },
    ])
    expect(view.tokenSummary).toMatchObject({ mean: 12.5, max: 40 })
  })
})

describe('versions and preprocessing', () => {
  it('reads recipes, comparisons and reports', () => {
    expect(recipeKind({ kind: 'preprocess', options: {} })).toBe('preprocess')
    expect(recipeKind(null)).toBe('unknown')
    const cmp = compareView({
      added: 1,
      removed: { count: 2, samples: [{ text: 'x' }] },
      changed: [],
      samples: { added: [{ text: 'y' }] },
    })
    expect(cmp.added).toEqual({ count: 1, samples: [{ text: 'y' }] })
    expect(cmp.removed.count).toBe(2)
    expect(cmp.changed.count).toBe(0)
    expect(reportView({ report: { original_rows: 5, processed_rows: 4, removed: { dedupe: 1 } } })).toEqual({
      original: 5,
      processed: 4,
      removed: [['dedupe', 1]],
    })
  })
})

describe('recipes', () => {
  it('lists what a recipe did, leaving out what was off', async () => {
    const { recipeDetails } = await import('@/components/datasets/versions')
    expect(
      recipeDetails({
        kind: 'preprocess',
        options: {
          clean_text: false,
          dedupe: 'normalized',
          drop_empty: true,
          tokenizer: null,
          length_unit: 'chars',
          split: null,
        },
        from_version: 1,
        from_version_id: 7,
        report: { original_rows: 4, processed_rows: 3, removed: { duplicate_exact: 1 } },
      }),
    ).toEqual(['dedupe: normalized', 'drop_empty', 'from_version: 1', '4 → 3'])
    expect(recipeDetails({ kind: 'upload', filename: 'a.jsonl', format_override: null })).toEqual(['filename: a.jsonl'])
  })
})
