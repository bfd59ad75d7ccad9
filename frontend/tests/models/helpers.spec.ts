import { describe, expect, it } from 'vitest'

import type { ModelVersion } from '@/api/models'
import {
  PROVIDER_PRESETS,
  architectureLabel,
  baseUrlProblem,
  buildLineage,
  evalLoss,
  finalLoss,
  formatContext,
  formatLoss,
  formatParams,
  keyMask,
  modelNameProblem,
  normalizeTags,
  providerFormProblems,
  registerFormProblems,
  versionModelId,
} from '@/components/models/helpers'

function version(partial: Partial<ModelVersion> = {}): ModelVersion {
  return {
    id: 7,
    model_id: 3,
    number: 2,
    weights: 'adapter',
    status: 'ready',
    tags: [],
    notes: '',
    created_at: '2026-12-05T10:00:00Z',
    ...partial,
  }
}

describe('number formats', () => {
  it('shows parameter counts the way model names do', () => {
    expect(formatParams(97_344)).toBe('97.3K')
    expect(formatParams(7_400_000)).toBe('7.4M')
    expect(formatParams(12_345_678)).toBe('12.3M')
    expect(formatParams(494_032_768)).toBe('0.49B')
    expect(formatParams(7_615_616_512)).toBe('7.62B')
    expect(formatParams(72_000_000_000)).toBe('72B')
    expect(formatParams(512)).toBe('512')
    expect(formatParams(null)).toBe('—')
    expect(formatParams(undefined)).toBe('—')
    expect(formatParams(Number.NaN)).toBe('—')
  })

  it('shows context windows in K when they are whole kibi-tokens', () => {
    expect(formatContext(32768)).toBe('32K')
    expect(formatContext(2048)).toBe('2K')
    expect(formatContext(1000)).toBe('1000')
    expect(formatContext(0)).toBe('—')
    expect(formatContext(null)).toBe('—')
  })

  it('rounds losses to four significant digits', () => {
    expect(formatLoss(2.718281)).toBe('2.718')
    expect(formatLoss(0.000123456)).toBe('0.0001235')
    expect(formatLoss(null)).toBe('—')
    expect(finalLoss({ final_train_loss: 1.5, train_loss: 2 })).toBe(1.5)
    expect(finalLoss({ train_loss: 2 })).toBe(2)
    expect(finalLoss({ loss: 3 })).toBe(3)
    expect(finalLoss(null)).toBeNull()
    expect(evalLoss({ final_eval_loss: 0.9, eval_loss: 1 })).toBe(0.9)
    expect(evalLoss({ eval_loss: 1 })).toBe(1)
    expect(evalLoss({})).toBeNull()
  })
})

describe('architecture column', () => {
  it('names full weights by architecture and adapters by their kind and rank', () => {
    expect(architectureLabel({ architecture: 'Qwen2ForCausalLM', peft_type: null })).toBe('Qwen2ForCausalLM')
    expect(architectureLabel({ peft_type: 'LORA', lora_rank: 8 })).toBe('LORA r8')
    expect(architectureLabel({ peft_type: 'LORA' })).toBe('LORA')
    expect(architectureLabel({})).toBe('—')
  })
})

describe('lineage', () => {
  it('chains base → version → job → dataset with links to each page', () => {
    const nodes = buildLineage(
      { name: 'ft:demo-tiny:lf:12' },
      version({
        base: { name: 'demo-tiny', ref: 'demo-tiny', model_id: null, version_id: null },
        source_job: { id: 12, name: 'my run', status: 'succeeded' },
        dataset: { id: 4, name: 'forge-demo', version_id: 9, version_number: 1 },
      }),
    )
    expect(nodes).toEqual([
      { kind: 'base', label: 'demo-tiny' },
      { kind: 'version', label: 'ft:demo-tiny:lf:12', detail: 'v2 · adapter' },
      { kind: 'job', label: 'my run', detail: '#12 · succeeded', to: { name: 'job-detail', params: { id: 12 } } },
      { kind: 'dataset', label: 'forge-demo', detail: 'v1', to: { name: 'dataset-detail', params: { id: 4 } } },
    ])
  })

  it('links a registered base model and shows the adapter a merge came from', () => {
    const merged = buildLineage(
      { name: 'mine' },
      version({
        weights: 'full',
        number: 3,
        base: { name: 'qwen-base@v1', ref: null, model_id: 5, version_id: 8 },
        parent_version_id: 7,
        source_job: { id: 30, name: '', status: 'succeeded' },
      }),
    )
    expect(merged.map((n) => n.kind)).toEqual(['base', 'parent', 'version', 'job'])
    expect(merged[0]).toEqual({ kind: 'base', label: 'qwen-base@v1', to: { name: 'model-detail', params: { id: 5 } } })
    expect(merged[1]).toEqual({ kind: 'parent', label: '#7' })
    expect(merged[3]).toMatchObject({ label: '#30', to: { name: 'job-detail', params: { id: 30 } } })
  })

  it('shows a base registered from the Hub as itself alone, and a hub base by its ref', () => {
    expect(buildLineage({ name: 'qwen' }, version({ weights: 'full', number: 1, base: null }))).toEqual([
      { kind: 'version', label: 'qwen', detail: 'v1 · full' },
    ])
    const onHub = buildLineage(
      { name: 'x' },
      version({ base: { name: 'Qwen/Qwen2.5-0.5B', ref: 'Qwen/Qwen2.5-0.5B' } }),
    )
    expect(onHub[0]).toEqual({ kind: 'base', label: 'Qwen/Qwen2.5-0.5B' })
  })

  it('names one version for /v1 as name@vN', () => {
    expect(versionModelId('ft:demo-tiny:lf:12', { number: 2 })).toBe('ft:demo-tiny:lf:12@v2')
  })
})

describe('tags', () => {
  it('trims, drops empty ones and repeats, and caps length and count', () => {
    expect(normalizeTags([' best ', 'best', '', '  ', 'eval'])).toEqual(['best', 'eval'])
    expect(normalizeTags(['x'.repeat(100)])[0]).toHaveLength(64)
    expect(normalizeTags(Array.from({ length: 40 }, (_, i) => `t${i}`))).toHaveLength(32)
  })
})

describe('form validation (the server rules, checked first)', () => {
  it('checks model names', () => {
    expect(modelNameProblem('qwen2.5-0.5b')).toBeNull()
    expect(modelNameProblem('org/model:v2')).toBeNull()
    expect(modelNameProblem('')).toBe('required')
    expect(modelNameProblem('-leading')).toBe('modelName')
    expect(modelNameProblem('has space')).toBe('modelName')
    expect(modelNameProblem('name@v3')).toBe('modelNameVersion')
    expect(modelNameProblem('ft:demo:lf:1')).toBe('modelNameFt')
    expect(modelNameProblem('demo-tiny')).toBe('modelNameReserved')
  })

  it('checks the register form by source', () => {
    expect(registerFormProblems({ name: 'q', source: 'hub', ref: 'Qwen/Qwen2.5-0.5B' })).toEqual({})
    expect(registerFormProblems({ name: 'q', source: 'hub', ref: 'not a hub id' })).toEqual({ ref: 'hubId' })
    expect(registerFormProblems({ name: '', source: 'local', ref: 'relative/dir' })).toEqual({
      name: 'required',
      ref: 'absolutePath',
    })
    expect(registerFormProblems({ name: 'q', source: 'local', ref: '/srv/models/q' })).toEqual({})
  })

  it('checks provider names and base URLs', () => {
    expect(baseUrlProblem('https://api.openai.com/v1')).toBeNull()
    expect(baseUrlProblem('http://127.0.0.1:11434/v1')).toBeNull()
    expect(baseUrlProblem('')).toBe('required')
    expect(baseUrlProblem('not a url')).toBe('url')
    expect(baseUrlProblem('ftp://example.com/v1')).toBe('url')
    expect(baseUrlProblem('javascript:alert(1)')).toBe('url')
    expect(providerFormProblems({ name: 'my-vllm', base_url: 'http://127.0.0.1:8000/v1' })).toEqual({})
    expect(providerFormProblems({ name: 'My Provider', base_url: 'localhost:8000' })).toEqual({
      name: 'providerName',
      base_url: 'url',
    })
  })

  it('offers presets that pass its own checks', () => {
    expect(PROVIDER_PRESETS.map((p) => p.label)).toEqual(['OpenAI', 'DeepSeek', 'Ollama', 'SiliconFlow', 'vLLM'])
    expect(PROVIDER_PRESETS.find((p) => p.key === 'ollama')?.base_url).toBe('http://127.0.0.1:11434/v1')
    expect(PROVIDER_PRESETS.find((p) => p.key === 'vllm')?.base_url).toBe('http://127.0.0.1:8000/v1')
    for (const p of PROVIDER_PRESETS) expect(providerFormProblems(p)).toEqual({})
  })

  it('masks a stored key to its last four characters', () => {
    expect(keyMask({ has_api_key: true, api_key_last4: 'abcd' })).toBe('••••abcd')
    expect(keyMask({ has_api_key: false, api_key_last4: null })).toBe('')
  })
})
