import ElementPlus from 'element-plus'
import { describe, expect, it } from 'vitest'
import { createApp, nextTick } from 'vue'

import RowDiff from '@/components/datasets/RowDiff.vue'
import { diffRow, diffText, tokenize, type DiffPart } from '@/components/datasets/rowDiff'
import { i18n } from '@/i18n'

function side(parts: DiffPart[], which: 'before' | 'after'): string {
  const skip = which === 'before' ? 'added' : 'removed'
  return parts
    .filter((p) => p.kind !== skip)
    .map((p) => p.text)
    .join('')
}

describe('diffText', () => {
  it('marks the changed words only', () => {
    expect(diffText('The cat sat on the mat.', 'The dog sat on the mat!')).toEqual([
      { kind: 'same', text: 'The ' },
      { kind: 'removed', text: 'cat' },
      { kind: 'added', text: 'dog' },
      { kind: 'same', text: ' sat on the mat' },
      { kind: 'removed', text: '.' },
      { kind: 'added', text: '!' },
    ])
  })

  it('diffs Chinese character by character', () => {
    expect(tokenize('你好abc世界')).toEqual(['你', '好', 'abc', '世', '界'])
    expect(diffText('我们的首都是巴黎', '首都是巴黎')).toEqual([
      { kind: 'removed', text: '我们的' },
      { kind: 'same', text: '首都是巴黎' },
    ])
  })

  it('shows whitespace changes, insertions and deletions, and rebuilds both sides', () => {
    const before = 'def f(x):\n    return  x   \nprint(f(1))'
    const after = 'def f(x, y):\n    return x\nprint(f(1))\n'
    const parts = diffText(before, after)
    expect(side(parts, 'before')).toBe(before)
    expect(side(parts, 'after')).toBe(after)
    expect(parts).toContainEqual({ kind: 'added', text: ', y' })
    expect(parts.filter((p) => p.kind === 'same').map((p) => p.text)).toContain('print(f(1))')
    expect(diffText('', 'new')).toEqual([{ kind: 'added', text: 'new' }])
    expect(diffText('old', '')).toEqual([{ kind: 'removed', text: 'old' }])
    expect(diffText('same', 'same')).toEqual([{ kind: 'same', text: 'same' }])
  })

  it('falls back to removed-then-added for huge changes, still exact', () => {
    const before = Array.from({ length: 3000 }, (_, i) => `a${i}`).join(' ')
    const after = Array.from({ length: 3000 }, (_, i) => `b${i}`).join(' ')
    const parts = diffText(before, after)
    expect(side(parts, 'before')).toBe(before)
    expect(side(parts, 'after')).toBe(after)
  })
})

describe('diffRow', () => {
  it('splits a normalized row into changed and unchanged fields', () => {
    const before = {
      row: 4,
      system: 'Be brief.',
      prompt: [{ role: 'user', content: '<p>What is LoRA?</p>' }],
      response: [{ role: 'assistant', content: 'Low-rank adaptation.' }],
      split: 'train',
    }
    const after = {
      ...before,
      prompt: [{ role: 'user', content: 'What is LoRA?' }],
      split: 'validation',
      token_ids: [[1, 2]],
    }
    const diff = diffRow(before, after)
    expect(diff.changed.map((f) => f.field)).toEqual(['prompt[0] user', 'split', 'token_ids[0]'])
    expect(diff.unchanged.map((f) => f.field)).toEqual(['system', 'response[0] assistant'])
    const prompt = diff.changed[0]!
    expect(prompt.before).toBe('<p>What is LoRA?</p>')
    expect(prompt.parts.filter((p) => p.kind === 'removed').map((p) => p.text)).toEqual(['<p>', '</p>'])
    expect(diff.changed[2]).toMatchObject({ before: null, after: '[1,2]' })
  })
})

describe('RowDiff', () => {
  it('highlights the changed words and folds the unchanged fields', async () => {
    const before = { row: 2, system: 'S', prompt: [{ role: 'user', content: 'List<String> <b>x</b>' }], response: [] }
    const after = { ...before, prompt: [{ role: 'user', content: 'List<String> x' }] }
    const el = document.createElement('div')
    const app = createApp(RowDiff, { before, after, row: 2 }).use(i18n).use(ElementPlus)
    app.mount(el)
    expect(el.querySelectorAll('[data-testid="diff-field"]')).toHaveLength(1)
    expect([...el.querySelectorAll('del')].map((d) => d.textContent)).toEqual(['<b>', '</b>'])
    expect(el.querySelector('ins')).toBeNull()
    expect(el.textContent).toContain('Row 2')
    expect(el.querySelector('[data-testid="diff-unchanged"]')).toBeNull()
    const toggle = el.querySelector<HTMLButtonElement>('[data-testid="diff-unchanged-toggle"]')!
    expect(toggle.textContent).toContain('2 unchanged fields')
    toggle.click()
    await nextTick()
    expect(el.querySelector('[data-testid="diff-unchanged"]')!.textContent).toContain('system')
    app.unmount()
  })
})
