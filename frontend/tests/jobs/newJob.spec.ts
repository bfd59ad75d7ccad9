/**
 * The new-job page as a dataset page's "Use for training" opens it (`?dataset=&version=`): that
 * dataset and version are chosen; and its fields are labelled in the UI language with the spec key
 * beside each label.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'

import type { SpecSchema } from '@/api/jobs'
import { prefillFrom, type PrefillApi } from '@/components/jobs/form/prefill'
import { i18n } from '@/i18n'
import JobNewView from '@/views/jobs/JobNewView.vue'

import { byTestId, cleanUpAfterEach, fakeServer, flush, json, mountView } from '../models/harness'

vi.setConfig({ testTimeout: 30_000 })
cleanUpAfterEach()
afterEach(() => {
  i18n.global.locale.value = 'en'
})

const SCHEMA: SpecSchema = {
  schema: {
    properties: {
      model_name_or_path: { type: 'string', description: 'A model.' },
      dataset: { type: 'integer', description: 'A dataset id.' },
      dataset_version: { anyOf: [{ type: 'integer' }, { type: 'null' }], default: null },
      stage: { type: 'string', enum: ['pt', 'sft', 'dpo'], default: 'sft' },
      finetuning_type: { type: 'string', enum: ['lora', 'full', 'freeze'], default: 'lora' },
      max_steps: { type: 'integer', default: -1, description: 'Total optimiser steps.' },
      learning_rate: { type: 'number', exclusiveMinimum: 0, default: 5e-5 },
      lora_rank: { type: 'integer', minimum: 1, default: 8, description: 'LoRA rank r.' },
    },
  },
  groups: { common: ['lora_rank'], advanced: [] },
}

const dataset = (id: number, name: string, currentVersionId: number) => ({
  id,
  name,
  description: '',
  owner_id: 1,
  format: 'alpaca',
  rows: 10,
  current_version: 2,
  current_version_id: currentVersionId,
  tags: [],
  created_at: '2026-12-05T10:00:00Z',
  updated_at: '2026-12-05T10:00:00Z',
})
const version = (id: number, number: number, message: string) => ({
  id,
  dataset_id: 4,
  number,
  message,
  format: 'alpaca',
  rows: 10,
  recipe: {},
  created_at: '2026-12-05T10:00:00Z',
})

function server(datasets: unknown[]) {
  return fakeServer((req) => {
    if (req.path === '/api/jobs/spec-schema') return json(200, SCHEMA)
    if (req.path === '/api/datasets') return json(200, { items: datasets, total: datasets.length })
    if (req.path === '/api/datasets/4') return json(200, dataset(4, 'forge-demo', 9))
    if (req.path === '/api/datasets/4/versions') return json(200, [version(9, 2, 'cleaned'), version(7, 1, 'raw')])
    if (req.path === '/api/templates/presets') return json(200, { items: [] })
    return undefined
  })
}

describe('new job from a dataset page', () => {
  it('reads the dataset and version from the URL, over any other source', async () => {
    const deps: PrefillApi = {
      getJob: vi.fn(),
      getTemplate: vi.fn(async () => ({ name: 'tpl', spec: { learning_rate: 0.001, dataset: 1, dataset_version: 2 } })),
      presets: vi.fn(async () => []),
    } as unknown as PrefillApi
    expect((await prefillFrom({ dataset: '4', version: '7' }, deps)).spec).toEqual({ dataset: 4, dataset_version: 7 })
    const fromTemplate = await prefillFrom({ template: '3', dataset: '4' }, deps)
    expect(fromTemplate.source?.kind).toBe('template')
    // The template's own pinned version belonged to its dataset: a new dataset means its current version.
    expect(fromTemplate.spec).toEqual({ learning_rate: 0.001, dataset: 4 })
    expect((await prefillFrom({ dataset: 'x', version: '7' }, deps)).spec).toEqual({})
  })

  it('preselects that dataset and version in the form, fetching a dataset beyond the first page', async () => {
    const seen = server([dataset(1, 'alpha', 3)])
    const { el } = await mountView(JobNewView, '/jobs/new?dataset=4&version=7')
    await flush()
    expect(seen.some((r) => r.path === '/api/datasets/4')).toBe(true)
    expect(byTestId('job-dataset')!.textContent).toContain('forge-demo')
    expect(byTestId('job-dataset-version')!.textContent).toContain('v1 · raw')
    expect(el.querySelector('[data-testid="job-prefill-notice"]')).toBeNull()
  })
})

describe('field labels', () => {
  it('names spec keys in the UI language and shows the key beside the label', async () => {
    server([dataset(4, 'forge-demo', 9)])
    await mountView(JobNewView, '/jobs/new')
    await flush()
    const label = () => byTestId('job-max-steps-label')!.textContent!.trim()
    expect(label()).toBe('Max steps')
    const field = byTestId('job-max-steps-label')!.closest('.spec-field')!
    expect(field.querySelector('code.spec-key')!.textContent).toBe('max_steps')
    expect(byTestId('job-field-lora_rank-label')!.textContent!.trim()).toBe('LoRA rank')
    const keys = [...document.querySelectorAll('[data-testid="field-spec-key"]')].map((e) => e.textContent)
    expect(keys).toEqual(expect.arrayContaining(['model_name_or_path', 'dataset', 'dataset_version', 'stage']))

    i18n.global.locale.value = 'zh-CN'
    await flush()
    expect(label()).toBe('最大步数')
    expect(field.querySelector('code.spec-key')!.textContent).toBe('max_steps')
  })
})
