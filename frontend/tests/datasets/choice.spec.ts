import ElementPlus from 'element-plus'
import { afterEach, describe, expect, it } from 'vitest'
import { createApp, nextTick, type App } from 'vue'

import { DATASET_FORMATS, TRAINING_FORMATS } from '@/api/datasets'
import SampleCard from '@/components/datasets/SampleCard.vue'
import { mappedColumns } from '@/components/datasets/detection'
import { sampleView } from '@/components/datasets/sample'
import { i18n } from '@/i18n'

// A normalized row of a multiple_choice version (datastore/choice.py): the question rendered as the
// prompt, the letter as the response, and the question itself under `choice`.
const ROW = {
  index: 0,
  row: 1,
  prompt: [{ role: 'user', content: 'What is 2 + 2?\nA. 3\nB. 4\nAnswer:' }],
  response: [{ role: 'assistant', content: 'B' }],
  system: '',
  tools: '',
  label: null,
  choice: { question: 'What is 2 + 2?', options: ['3', '4'], answer: 'B', subject: 'math' },
}

let app: App | null = null
afterEach(() => {
  app?.unmount()
  app = null
  document.body.innerHTML = ''
})

describe('multiple-choice datasets', () => {
  it('are a format to filter and upload as, but never one to train on or map columns for', () => {
    expect(DATASET_FORMATS).toContain('multiple_choice')
    expect(TRAINING_FORMATS).not.toContain('multiple_choice')
    expect(i18n.global.t('datasets.formats.multiple_choice')).toBe('Multiple choice')
  })

  it('preview a row as its question, lettered options and the answer marked', async () => {
    expect(sampleView(ROW, 'multiple_choice')).toEqual({
      kind: 'choice',
      question: 'What is 2 + 2?',
      options: ['3', '4'],
      answer: 'B',
      subject: 'math',
    })
    const el = document.createElement('div')
    document.body.appendChild(el)
    app = createApp(SampleCard, { sample: ROW, format: 'multiple_choice' })
    app.use(i18n).use(ElementPlus).mount(el)
    await nextTick()
    expect(el.querySelector('[data-testid="sample-choice"]')!.textContent).toContain('Subject: math')
    expect(el.querySelector('[data-testid="sample-option-A"]')!.classList.contains('correct')).toBe(false)
    expect(el.querySelector('[data-testid="sample-option-B"]')!.classList.contains('correct')).toBe(true)
  })

  it('show their detected column mapping', () => {
    const mapping = { formatting: 'multiple_choice', columns: { question: '问题', A: 'A', B: 'B', answer: '答案' } }
    expect(mappedColumns(mapping)).toEqual([
      ['question', '问题'],
      ['A', 'A'],
      ['B', 'B'],
      ['answer', '答案'],
    ])
  })
})
