/**
 * The new-evaluation form's logic: the prefill from the URL, which options show for which metrics, and
 * the request body (only what was set; browser-side problems named by field).
 */
import { describe, expect, it } from 'vitest'

import {
  DEFAULT_JUDGE_PROMPTS,
  FIELD_ALIASES,
  FORM_FIELDS,
  FormProblem,
  buildPayload,
  emptyForm,
  optionShown,
  prefillFromQuery,
  suggestName,
  type EvalForm,
} from '@/components/evaluations/form'
import { mapFieldPath } from '@/api/errors'

const filled = (over: Partial<EvalForm> = {}): EvalForm => ({
  ...emptyForm(),
  name: 'tiny check',
  models: ['demo-tiny'],
  dataset: 7,
  ...over,
})

function problem(form: EvalForm): FormProblem {
  try {
    buildPayload(form)
  } catch (err) {
    if (err instanceof FormProblem) return err
    throw err
  }
  throw new Error('no problem raised')
}

describe('prefillFromQuery', () => {
  it('reads ?models=a,b&dataset=ID&version=ID', () => {
    expect(prefillFromQuery({ models: 'demo-tiny, ft:x@v2,demo-tiny', dataset: '3', version: '9' })).toEqual({
      models: ['demo-tiny', 'ft:x@v2'],
      dataset: 3,
      datasetVersion: 9,
    })
  })

  it('ignores what is not usable', () => {
    expect(prefillFromQuery({ models: ',', dataset: 'abc', version: '2' })).toEqual({})
    expect(prefillFromQuery({})).toEqual({})
    const many = Array.from({ length: 12 }, (_, i) => `m${i}`).join(',')
    expect(prefillFromQuery({ models: many }).models).toHaveLength(8)
  })
})

describe('optionShown', () => {
  it('shows an option only with a metric that reads it', () => {
    expect(optionShown('regexPattern', ['bleu'])).toBe(false)
    expect(optionShown('regexPattern', ['bleu', 'regex'])).toBe(true)
    expect(optionShown('jsonSchema', ['valid_json'])).toBe(true)
    expect(optionShown('caseSensitive', ['contains'])).toBe(true)
    expect(optionShown('nShot', ['exact_match'])).toBe(false)
    expect(optionShown('nShot', ['multiple_choice'])).toBe(true)
    expect(optionShown('judge', ['judge'])).toBe(true)
  })
})

describe('buildPayload', () => {
  it('sends the essentials and the generation parameters, with metrics in canonical order', () => {
    const body = buildPayload(filled({ metrics: ['rouge', 'bleu'], maxNewTokens: 16 }))
    expect(body).toEqual({
      name: 'tiny check',
      description: '',
      models: ['demo-tiny'],
      dataset: 7,
      split: 'all',
      metrics: ['bleu', 'rouge'],
      generation: { max_new_tokens: 16, temperature: 0, top_p: 1 },
      shared: false,
      start: true,
    })
  })

  it('adds version, description, max samples and draft mode when set', () => {
    const body = buildPayload(
      filled({ datasetVersion: 11, description: ' why ', maxSamples: 4, start: false, split: 'test' }),
    )
    expect(body.dataset_version).toBe(11)
    expect(body.description).toBe('why')
    expect(body.options).toEqual({ max_samples: 4 })
    expect(body.start).toBe(false)
    expect(body.split).toBe('test')
  })

  it('sends the options of chosen metrics only', () => {
    const form = filled({
      metrics: ['bleu'],
      regexPattern: '^\\d+$',
      jsonSchema: '{"type": "object"}',
      caseSensitive: true,
      nShot: 3,
    })
    expect(buildPayload(form).options).toBeUndefined()
    const all = buildPayload({ ...form, metrics: ['regex', 'valid_json', 'exact_match', 'multiple_choice'] })
    expect(all.options).toEqual({
      regex_pattern: '^\\d+$',
      json_schema: { type: 'object' },
      case_sensitive: true,
      n_shot: 3,
    })
  })

  it('names the field of what the browser can tell is wrong', () => {
    expect(problem(filled({ name: '  ' })).field).toBe('name')
    expect(problem(filled({ models: [] })).field).toBe('models')
    expect(problem(filled({ dataset: null })).field).toBe('dataset')
    expect(problem(filled({ metrics: [] })).field).toBe('metrics')
    expect(problem(filled({ metrics: ['regex'] })).field).toBe('regex_pattern')
    expect(problem(filled({ metrics: ['valid_json'], jsonSchema: '{nope' })).field).toBe('json_schema')
    expect(problem(filled({ metrics: ['valid_json'], jsonSchema: '[1]' })).field).toBe('json_schema')
    expect(problem(filled({ metrics: ['judge'] })).field).toBe('judge_model')
  })

  it('sends the judge, and its prompt only when changed from the default', () => {
    const form = filled({ metrics: ['judge'], judgeModel: 'demo-tiny', judgePrompt: DEFAULT_JUDGE_PROMPTS.single })
    expect(buildPayload(form).judge).toEqual({ model: 'demo-tiny', mode: 'single' })
    const custom = 'Rate {answer} for {question} against {reference}.'
    expect(buildPayload({ ...form, judgePrompt: custom }).judge).toEqual({
      model: 'demo-tiny',
      mode: 'single',
      prompt: custom,
    })
    expect(problem({ ...form, judgePrompt: 'Rate {answer}.' }).field).toBe('judge_prompt')
    expect(problem({ ...form, judgeMode: 'pairwise', judgePrompt: custom }).field).toBe('judge_prompt')
    // A judge left over from an unticked metric is not sent.
    expect(buildPayload({ ...form, metrics: ['bleu'] }).judge).toBeUndefined()
  })
})

describe('server field errors', () => {
  it('land on the form fields', () => {
    const at = (path: string) => mapFieldPath(path, FORM_FIELDS, FIELD_ALIASES)
    expect(at('body.models[1]')).toBe('models')
    expect(at('body.models.1')).toBe('models')
    expect(at('body.generation.max_new_tokens')).toBe('max_new_tokens')
    expect(at('body.options.regex_pattern')).toBe('regex_pattern')
    expect(at('body.judge.model')).toBe('judge_model')
    expect(at('body.judge.prompt')).toBe('judge_prompt')
    expect(at('body.dataset_version')).toBe('dataset_version')
  })
})

describe('suggestName', () => {
  it('names the evaluation after its models and dataset', () => {
    expect(suggestName(['a', 'b'], 'qa')).toBe('a vs b · qa')
    expect(suggestName(['a', 'b', 'c'], null)).toBe('a +2')
    expect(suggestName([], 'qa')).toBe('qa')
    expect([...suggestName(['m'.repeat(90), 'n'.repeat(90)], 'qa')]).toHaveLength(100)
  })
})
