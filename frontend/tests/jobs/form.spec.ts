import { describe, expect, it, vi } from 'vitest'

import { ApiError } from '@/api/errors'
import type { Job, SpecSchema } from '@/api/jobs'
import { mergePatch, prefillFrom, type PrefillApi } from '@/components/jobs/form/prefill'
import {
  applyMethod,
  buildSpec,
  isRelevant,
  methodOf,
  parseField,
  schemaFields,
  serverFieldErrors,
  specToYaml,
  touchesAdvanced,
  valuesFromSpec,
  withoutHidden,
} from '@/components/jobs/form/specForm'

// An excerpt of GET /api/jobs/spec-schema, with the shapes the engine's schema really uses.
const SCHEMA: SpecSchema = {
  schema: {
    properties: {
      model_name_or_path: { type: 'string', description: 'A local model folder or a hub id.' },
      dataset: { type: 'integer', description: 'The id of one of your LoRAForge datasets.' },
      dataset_version: { anyOf: [{ type: 'integer' }, { type: 'null' }], default: null },
      stage: { type: 'string', enum: ['pt', 'sft', 'dpo'], default: 'sft', description: 'Training stage.' },
      finetuning_type: { type: 'string', enum: ['lora', 'full', 'freeze'], default: 'lora' },
      quantization_bit: { anyOf: [{ enum: [4, 8], type: 'integer' }, { type: 'null' }], default: null },
      lora_rank: { type: 'integer', minimum: 1, default: 8, description: 'LoRA rank r.' },
      learning_rate: { type: 'number', exclusiveMinimum: 0, default: 5e-5, description: 'Peak learning rate.' },
      max_steps: { type: 'integer', default: -1, description: 'Total optimiser steps.' },
      devices: {
        anyOf: [
          { enum: ['auto', 'cpu'], type: 'string' },
          { items: { type: 'integer' }, type: 'array' },
        ],
        default: 'auto',
      },
      pref_beta: { type: 'number', default: 0.1 },
      packing: { anyOf: [{ type: 'boolean' }, { type: 'null' }], default: null },
      warmup_ratio: { type: 'number', minimum: 0, maximum: 1, default: 0 },
      freeze_trainable_layers: { type: 'integer', default: 2 },
      output_dir: { type: 'string' },
    },
  },
  groups: {
    common: [
      'model_name_or_path',
      'dataset',
      'dataset_version',
      'stage',
      'finetuning_type',
      'quantization_bit',
      'lora_rank',
      'learning_rate',
      'max_steps',
      'devices',
    ],
    advanced: ['pref_beta', 'packing', 'warmup_ratio', 'freeze_trainable_layers'],
    hidden: ['output_dir'],
  },
}
const fields = schemaFields(SCHEMA)

function job(partial: Partial<Job>): Job {
  return {
    id: 7,
    owner_id: 1,
    name: 'run-7',
    status: 'failed',
    priority: 0,
    spec: {},
    dataset_id: 3,
    dataset_version_id: 11,
    executor: 'local',
    exit_code: 1,
    error: null,
    progress: 0.2,
    last_event_seq: 10,
    created_at: '2026-11-22T08:00:00Z',
    updated_at: '2026-11-22T08:00:00Z',
    queued_at: null,
    started_at: null,
    finished_at: null,
    ...partial,
  } as Job
}

describe('reading the spec schema', () => {
  it('derives a widget kind, bounds and tooltip text for each key', () => {
    expect(fields.stage).toMatchObject({ kind: 'enum', options: ['pt', 'sft', 'dpo'], description: 'Training stage.' })
    expect(fields.quantization_bit).toMatchObject({ kind: 'enum', options: [4, 8], nullable: true })
    expect(fields.lora_rank).toMatchObject({ kind: 'integer', minimum: 1 })
    expect(fields.learning_rate).toMatchObject({
      kind: 'number',
      exclusiveMinimum: 0,
      description: 'Peak learning rate.',
    })
    expect(fields.dataset_version).toMatchObject({ kind: 'integer', nullable: true })
    expect(fields.devices).toMatchObject({ kind: 'list', itemKind: 'integer', words: ['auto', 'cpu'] })
    expect(fields.packing).toMatchObject({ kind: 'boolean', nullable: true })
  })

  it('checks values with the schema rules as they are typed', () => {
    expect(parseField(fields.learning_rate!, '1e-4')).toEqual({ ok: true, value: 0.0001 })
    expect(parseField(fields.learning_rate!, '0')).toEqual({
      ok: false,
      error: { key: 'jobs.form.errors.above', params: { min: 0 } },
    })
    expect(parseField(fields.learning_rate!, 'fast')).toMatchObject({
      ok: false,
      error: { key: 'jobs.form.errors.number' },
    })
    expect(parseField(fields.lora_rank!, '2.5')).toMatchObject({
      ok: false,
      error: { key: 'jobs.form.errors.integer' },
    })
    expect(parseField(fields.lora_rank!, '0')).toMatchObject({ ok: false, error: { key: 'jobs.form.errors.min' } })
    expect(parseField(fields.warmup_ratio!, '1.5')).toMatchObject({ ok: false, error: { key: 'jobs.form.errors.max' } })
    expect(parseField(fields.devices!, 'cpu')).toEqual({ ok: true, value: 'cpu' })
    expect(parseField(fields.devices!, '0, 1')).toEqual({ ok: true, value: [0, 1] })
    expect(parseField(fields.devices!, 'gpu0')).toMatchObject({ ok: false, error: { key: 'jobs.form.errors.list' } })
    expect(parseField(fields.quantization_bit!, '4')).toEqual({ ok: true, value: 4 })
    expect(parseField(fields.max_steps!, '')).toEqual({ ok: true, value: undefined })
  })
})

describe('progressive disclosure', () => {
  it('shows LoRA keys for LoRA/QLoRA, freeze keys for freeze, preference keys for DPO only', () => {
    expect(isRelevant('lora_rank', { finetuning_type: 'lora' })).toBe(true)
    expect(isRelevant('lora_rank', { finetuning_type: 'lora', quantization_bit: 4 })).toBe(true)
    expect(isRelevant('lora_rank', { finetuning_type: 'full' })).toBe(false)
    expect(isRelevant('pissa_init', { finetuning_type: 'lora' })).toBe(true)
    expect(isRelevant('pissa_init', { finetuning_type: 'lora', quantization_bit: 4 })).toBe(false)
    expect(isRelevant('pissa_iter', { finetuning_type: 'lora' })).toBe(false)
    expect(isRelevant('pissa_iter', { finetuning_type: 'lora', pissa_init: true })).toBe(true)
    expect(isRelevant('loraplus_lr_ratio', { finetuning_type: 'full' })).toBe(false)
    expect(isRelevant('loraplus_lr_embedding', { finetuning_type: 'lora', loraplus_lr_ratio: 16 })).toBe(true)
    expect(isRelevant('rope_scaling', { finetuning_type: 'full' })).toBe(true)
    expect(isRelevant('freeze_trainable_layers', { finetuning_type: 'freeze' })).toBe(true)
    expect(isRelevant('freeze_trainable_layers', {})).toBe(false)
    expect(isRelevant('pref_beta', { stage: 'sft' })).toBe(false)
    expect(isRelevant('pref_beta', { stage: 'dpo' })).toBe(true)
    expect(isRelevant('pref_beta', { stage: 'kto' })).toBe(true)
    expect(isRelevant('kto_rejected_weight', { stage: 'kto' })).toBe(true)
    expect(isRelevant('kto_rejected_weight', { stage: 'dpo' })).toBe(false)
    expect(isRelevant('pref_loss', { stage: 'kto' })).toBe(false)
    expect(isRelevant('learning_rate', { finetuning_type: 'full' })).toBe(true)
  })

  it('maps the method select onto finetuning_type and quantization_bit', () => {
    expect(methodOf({})).toBe('lora')
    expect(methodOf({ finetuning_type: 'lora', quantization_bit: 4 })).toBe('qlora')
    expect(methodOf({ finetuning_type: 'full' })).toBe('full')
    expect(applyMethod({ finetuning_type: 'lora' }, 'qlora')).toEqual({ finetuning_type: 'lora', quantization_bit: 4 })
    expect(applyMethod({ finetuning_type: 'lora', quantization_bit: 4 }, 'full')).toEqual({ finetuning_type: 'full' })
  })

  it('builds a spec without empty fields or keys that do not apply', () => {
    const values = {
      model_name_or_path: 'demo-tiny',
      dataset: 3,
      stage: 'sft',
      finetuning_type: 'full',
      lora_rank: '16', // hidden once the method is full: not sent
      learning_rate: '2e-5',
      max_steps: '',
      pref_beta: '0.2', // DPO only: not sent for SFT
    }
    const built = buildSpec(values, fields, { custom_key: 'kept' })
    expect(built.errors).toEqual({})
    expect(built.spec).toEqual({
      custom_key: 'kept',
      model_name_or_path: 'demo-tiny',
      dataset: 3,
      stage: 'sft',
      finetuning_type: 'full',
      learning_rate: 2e-5,
    })
  })

  it('reports client-side problems per field, required ones included', () => {
    const built = buildSpec({ learning_rate: '-1', lora_rank: 'x' }, fields)
    expect(Object.keys(built.errors).sort()).toEqual(['dataset', 'learning_rate', 'lora_rank', 'model_name_or_path'])
    expect(built.errors.dataset).toEqual({ key: 'jobs.form.errors.required' })
  })
})

describe('server validation mapping', () => {
  it('puts a 422 detail on the field it names, and opens Advanced when one is there', () => {
    const err = new ApiError(422, 'invalid_spec', 'invalid job spec: spec.learning_rate, spec.warmup_ratio', [
      { field: 'body.spec.learning_rate', message: 'must be > 0' },
      { field: 'body.spec.warmup_ratio', message: 'at most 1' },
      { field: 'body.name', message: 'too long' },
    ])
    const split = serverFieldErrors(err, Object.keys(fields))
    expect(split.fields).toEqual({ learning_rate: 'must be > 0', warmup_ratio: 'at most 1', name: 'too long' })
    expect(split.general).toBeNull()
    expect(touchesAdvanced(Object.keys(split.fields), SCHEMA)).toBe(true)
    expect(touchesAdvanced(['learning_rate'], SCHEMA)).toBe(false)
  })

  it('keeps what cannot be placed for the alert above the form', () => {
    const err = new ApiError(422, 'invalid_spec', 'invalid job spec: spec.lr_typo', [
      { field: 'body.spec.lr_typo', message: "unknown key; did you mean 'learning_rate'?" },
    ])
    const split = serverFieldErrors(err, Object.keys(fields))
    expect(split.fields).toEqual({})
    expect(split.general).toBe("unknown key; did you mean 'learning_rate'?")
  })
})

describe('prefill', () => {
  const failed = job({
    spec: {
      model_name_or_path: 'demo-tiny',
      dataset: 3,
      dataset_version: 11,
      per_device_train_batch_size: 16,
      packing: true,
      output_dir: 'x',
    },
    error: {
      code: 'oom',
      message: 'out of memory',
      details: { spec_patch: { per_device_train_batch_size: 4, gradient_checkpointing: true, packing: null } },
    },
  })
  const deps: PrefillApi = {
    getJob: vi.fn(async () => failed),
    getTemplate: vi.fn(async () => {
      throw new Error('not used')
    }),
    presets: vi.fn(async () => []),
  }

  it('applies the suggested fix as a merge patch (null removes a key)', async () => {
    const prefill = await prefillFrom({ fromJob: '7', patch: 'suggested' }, deps)
    expect(deps.getJob).toHaveBeenCalledWith(7)
    expect(prefill.source).toEqual({ kind: 'fix', label: 'run-7' })
    expect(prefill.patched.sort()).toEqual(['gradient_checkpointing', 'packing', 'per_device_train_batch_size'])
    expect(prefill.spec).toMatchObject({
      per_device_train_batch_size: 4,
      gradient_checkpointing: true,
      dataset: 3,
      dataset_version: 11,
    })
    expect('packing' in prefill.spec).toBe(false)
    expect(mergePatch({ a: 1, b: 2 }, { b: null, c: 3 })).toEqual({ a: 1, c: 3 })
  })

  it('clones a job spec, and the form drops server-owned keys', async () => {
    const prefill = await prefillFrom({ clone: '7' }, deps)
    expect(prefill.source?.kind).toBe('clone')
    expect(prefill.name).toBe('run-7-copy')
    const clean = withoutHidden(prefill.spec, SCHEMA)
    expect(clean.output_dir).toBeUndefined()
    const values = valuesFromSpec(clean, fields)
    expect(values).toMatchObject({
      model_name_or_path: 'demo-tiny',
      dataset: '3',
      dataset_version: '11',
      packing: true,
    })
    expect(buildSpec(values, fields).spec).toMatchObject({ dataset: 3, dataset_version: 11, packing: true })
  })

  it('starts empty without a known source', async () => {
    expect(await prefillFrom({}, deps)).toMatchObject({ source: null, spec: {} })
    expect(await prefillFrom({ clone: 'abc' }, deps)).toMatchObject({ source: null })
  })
})

describe('YAML export', () => {
  it('writes flat YAML in form order, quoting only what needs it', () => {
    const yaml = specToYaml(
      {
        learning_rate: 0.0001,
        model_name_or_path: 'Qwen/Qwen2.5-0.5B-Instruct',
        devices: [0, 1],
        default_system: 'Be: brief',
        template: 'yes',
        packing: false,
      },
      ['model_name_or_path', 'learning_rate'],
    )
    expect(yaml).toBe(
      [
        'model_name_or_path: Qwen/Qwen2.5-0.5B-Instruct',
        'learning_rate: 0.0001',
        'default_system: "Be: brief"',
        'devices: [0,1]',
        'packing: false',
        'template: "yes"',
        '',
      ].join('\n'),
    )
  })
})
