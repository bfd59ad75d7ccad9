import { describe, expect, it, vi } from 'vitest'

import type { ExportFields, FormatOption } from '@/api/exports'
import type { ModelVersion } from '@/api/models'
import {
  EMPTY_PROGRESS,
  agreementPercent,
  canExport,
  defaultFormat,
  foldExportEvents,
  formatChoices,
  percentOf,
  pickQuantization,
  verificationTone,
} from '@/components/models/exportChoices'
import { exportCommands, mainFile, ollamaName, shellQuote } from '@/lib/exportCommands'
import ModelDetailView from '@/views/models/ModelDetailView.vue'

import { MODEL, VERSION, byTestId, cleanUpAfterEach, fakeServer, flush, json, mountView, settle } from './harness'

vi.setConfig({ testTimeout: 30_000 })
cleanUpAfterEach()

const q = (name: string, available = true, reason: string | null = null) => ({ name, available, reason })
const K_REASON = "needs the optional llama-cpp-python (pip install '.[gguf]')"
/** Like the server's catalog on a machine without llama-cpp-python and onnxruntime-genai. */
const fmt = (name: FormatOption['name'], rest: Partial<FormatOption>): FormatOption => ({
  name,
  available: true,
  reason: null,
  needs_adapter: false,
  default_quantization: null,
  quantizations: [],
  ...rest,
})
const FORMATS: FormatOption[] = [
  fmt('gguf', {
    default_quantization: 'q8_0',
    quantizations: [q('f32'), q('f16'), q('bf16'), q('q8_0'), q('q4_0'), q('q4_k_m', false, K_REASON)],
  }),
  fmt('gguf_lora', {
    needs_adapter: true,
    default_quantization: 'f16',
    quantizations: [q('f32'), q('f16'), q('q8_0')],
  }),
  fmt('ollama', { default_quantization: 'q8_0', quantizations: [q('f16'), q('q8_0'), q('q4_0')] }),
  fmt('onnx', {
    available: false,
    reason: 'needs onnxruntime-genai',
    default_quantization: 'fp32',
    quantizations: [q('fp32'), q('int4')],
  }),
  fmt('merged', { needs_adapter: true }),
]

describe('export commands', () => {
  it('runs a GGUF with llama.cpp, quoting what the shell would read as syntax', () => {
    const commands = exportCommands({
      format: 'gguf',
      files: ['model-q8_0.gguf'],
      modelName: 'tiny@v3',
      prompt: "What's $(rm -rf /)?",
    })
    expect(commands.map((c) => c.id)).toEqual(['llama_cli', 'llama_server'])
    expect(commands[0]!.text).toBe(`llama-cli -m model-q8_0.gguf -p 'What'\\''s $(rm -rf /)?' -n 128`)
    expect(commands[1]!.text).toBe('llama-server -m model-q8_0.gguf --port 8080')
    expect(shellQuote('my file.gguf')).toBe(`'my file.gguf'`)
    expect(shellQuote('')).toBe(`''`)
  })

  it('names the Ollama model as ollama accepts and creates it from the Modelfile', () => {
    expect(ollamaName('ft:demo-tiny:lf:12@v2')).toBe('ft-demo-tiny-lf-12-v2')
    expect(ollamaName('My Model!')).toBe('my-model')
    expect(ollamaName('***')).toBe('model')
    const commands = exportCommands({
      format: 'ollama',
      files: ['Modelfile', 'model.gguf'],
      modelName: 'Tiny@v4',
      prompt: 'Hi',
    })
    expect(commands.map((c) => c.text)).toEqual(['ollama create tiny-v4 -f Modelfile', 'ollama run tiny-v4 Hi'])
  })

  it('applies a LoRA GGUF on a base, runs ONNX in onnxruntime-genai and serves merged weights', () => {
    expect(mainFile(['Modelfile', 'a.gguf'])).toBe('a.gguf')
    expect(mainFile([])).toBeNull()
    const lora = exportCommands({ format: 'gguf_lora', files: ['adapter-f16.gguf'], modelName: 'x@v2', prompt: '' })
    expect(lora[0]!.text).toBe(`llama-cli -m base.gguf --lora adapter-f16.gguf -p 'Hello! Who are you?' -n 128`)
    const onnx = exportCommands({ format: 'onnx', files: ['model.onnx'], modelName: 'x@v2', prompt: 'Hi "there"' })
    expect(onnx[0]!.text).toContain("python - <<'EOF'")
    expect(onnx[0]!.text).toContain('og.Model("./x-v2")')
    expect(onnx[0]!.text).toContain('tok.encode("Hi \\"there\\"")')
    expect(exportCommands({ format: 'merged', files: [], modelName: 'x@v2', prompt: '' })[0]!.text).toBe(
      'vllm serve ./x-v2',
    )
    expect(exportCommands({ format: 'gguf', files: [], modelName: 'x', prompt: '' })).toEqual([])
  })
})

describe('export choices', () => {
  it('offers GGUF LoRA only from an adapter, and greys out what the server cannot write, with why', () => {
    const full = formatChoices(FORMATS, 'full')
    expect(full.map((c) => c.format)).toEqual(['gguf', 'gguf_lora', 'ollama', 'onnx', 'merged'])
    expect(full.find((c) => c.format === 'gguf_lora')).toMatchObject({ disabled: true, reason: { key: 'adapterOnly' } })
    expect(full.find((c) => c.format === 'merged')).toMatchObject({ disabled: true, reason: { key: 'adapterOnly' } })
    expect(full.find((c) => c.format === 'onnx')).toMatchObject({
      disabled: true,
      reason: { text: 'needs onnxruntime-genai' },
    })
    const adapter = formatChoices(FORMATS, 'adapter')
    expect(adapter.find((c) => c.format === 'gguf_lora')?.disabled).toBe(false)
    // A format the server does not list at all (an older server) is shown, not offered.
    const short = formatChoices(FORMATS.slice(0, 1), 'full')
    expect(short.find((c) => c.format === 'merged')).toMatchObject({ disabled: true, reason: { key: 'notOffered' } })
    expect(defaultFormat(full)).toBe('gguf')
    expect(defaultFormat(formatChoices([FORMATS[4]!], 'adapter'))).toBe('merged')
    expect(defaultFormat(formatChoices([], 'full'))).toBeNull()
  })

  it('keeps the quantization across formats when it can, else the suggested one, never an unavailable one', () => {
    const [gguf, lora, ollama, onnx, merged] = FORMATS
    expect(pickQuantization(gguf, null)).toBe('q8_0')
    expect(pickQuantization(gguf, 'q4_0')).toBe('q4_0')
    expect(pickQuantization(gguf, 'q4_k_m')).toBe('q8_0')
    expect(pickQuantization(lora, 'bf16')).toBe('f16')
    expect(pickQuantization(ollama, 'f16')).toBe('f16')
    expect(pickQuantization(onnx, 'q8_0')).toBe('fp32')
    expect(pickQuantization({ ...onnx!, default_quantization: null }, null)).toBe('int4')
    expect(pickQuantization(merged, 'q8_0')).toBeNull()
    expect(pickQuantization({ ...gguf!, default_quantization: null, quantizations: [q('f32')] }, null)).toBe('f32')

    const choices = formatChoices(FORMATS, 'full')
    expect(canExport(choices, 'gguf', 'q8_0')).toBe(true)
    expect(canExport(choices, 'gguf', 'q4_k_m')).toBe(false)
    expect(canExport(choices, 'gguf', null)).toBe(false)
    expect(canExport(choices, 'merged', null)).toBe(false)
    expect(canExport(formatChoices(FORMATS, 'adapter'), 'merged', null)).toBe(true)
    expect(canExport(choices, 'onnx', 'int4')).toBe(false)
    expect(canExport(choices, 'gguf_lora', 'f16')).toBe(false)
    expect(canExport(choices, null, null)).toBe(false)
  })

  it('follows the job: tensors written, then verifying; errors keep their code', () => {
    let state = foldExportEvents(EMPTY_PROGRESS, [
      { type: 'status', status: 'exporting' },
      { type: 'metric', step: 3, total_steps: 12, eta_s: 4 },
    ])
    expect(state).toMatchObject({ phase: 'exporting', step: 3, total: 12, eta_s: 4 })
    expect(percentOf(state, 0.1)).toBe(25)
    state = foldExportEvents(state, [{ type: 'status', status: 'verifying' }])
    expect(percentOf(state, null)).toBe(100)
    expect(percentOf(EMPTY_PROGRESS, 0.42)).toBe(42)
    const failed = foldExportEvents(EMPTY_PROGRESS, [{ type: 'error', code: 'disk_full', message: 'no room' }])
    expect(failed.error).toEqual({ code: 'disk_full', message: 'no room' })
  })

  it('tones the verification: identical, agreeing in part, failed', () => {
    expect(verificationTone({ ok: true, identical: true, reader: 'transformers' })).toBe('success')
    expect(verificationTone({ ok: true, identical: false, reader: 'transformers' })).toBe('warning')
    expect(verificationTone({ ok: false, identical: false, reader: 'transformers' })).toBe('error')
    expect(verificationTone({ ok: false, identical: false, reader: '' })).toBe('info')
    expect(agreementPercent({ agreement: 0.8125 })).toBe(81.3)
  })
})

// ----- the dialog on the model page, against a fake server -----

const EXPORTED: ModelVersion & ExportFields = {
  ...VERSION,
  id: 22,
  number: 2,
  weights: 'full',
  status: 'ready',
  tags: [],
  size_bytes: 120_000,
  format: 'gguf',
  quantization: 'q8_0',
  sha256: 'ab'.repeat(32),
  parent_version_id: 21,
  export: {
    format: 'gguf',
    quantization: 'q8_0',
    name: 'ft-demo-tiny-lf-12-v2',
    files: [{ name: 'ft-demo-tiny-q8_0.gguf', size: 120_000, sha256: 'ab'.repeat(32) }],
    commands: {},
  },
  verification: {
    ok: true,
    reader: 'transformers',
    prompt: 'Hello',
    tokens_compared: 16,
    agreement: 1,
    identical: true,
    detail: '',
  },
}

function exportServer() {
  return fakeServer((req) => {
    if (req.path === '/api/models/5') return json(200, MODEL)
    if (req.path === '/api/models/5/versions') return json(200, { items: [VERSION] })
    if (req.path === '/api/models/versions/21/scores') return json(200, { items: [] })
    if (req.path === '/api/exports/formats') return json(200, { formats: FORMATS })
    if (req.path === '/api/models/versions/21/exports/estimate') {
      const params = new URLSearchParams(req.query)
      const size = params.get('quantization') === 'f16' ? 200_000 : 100_000
      return json(200, { format: params.get('format'), file_bytes: size, memory_bytes: 3 * 1024 * 1024 })
    }
    if (req.method === 'POST' && req.path === '/api/models/versions/21/exports') {
      return json(201, { job_id: 90, version: { ...EXPORTED, status: 'exporting', verification: null } })
    }
    if (req.path === '/api/jobs/90') return json(200, { id: 90, status: 'succeeded', progress: 1, error: null })
    if (req.path === '/api/jobs/90/events') {
      return json(200, {
        items: [
          { seq: 1, type: 'status', status: 'exporting', ts: '2026-12-07T10:00:00Z' },
          { seq: 2, type: 'status', status: 'verifying', ts: '2026-12-07T10:00:01Z' },
        ],
        last_seq: 2,
      })
    }
    if (req.path === '/api/models/versions/22') return json(200, EXPORTED)
    return undefined
  })
}

const radio = (id: string) => byTestId(id)?.querySelector('input') as HTMLInputElement
const estimates = (seen: { path: string; query: string }[]) =>
  seen.filter((r) => r.path.endsWith('/exports/estimate')).map((r) => new URLSearchParams(r.query))

describe('export dialog', () => {
  it('exports an adapter version to GGUF Q8_0, updating the estimate, then shows the verified result', async () => {
    const seen = exportServer()
    await mountView(ModelDetailView, '/models/5')
    ;(byTestId('version-export-1') as HTMLElement).click()
    await settle()
    expect(byTestId('export-dialog')).not.toBeNull()
    // GGUF Q8_0 preselected; an adapter may become a GGUF LoRA; ONNX greyed out with the server's reason.
    expect(radio('export-format-gguf').checked).toBe(true)
    expect(radio('export-quant-q8_0').checked).toBe(true)
    expect(radio('export-format-gguf_lora').disabled).toBe(false)
    expect(radio('export-format-onnx').disabled).toBe(true)
    expect(byTestId('export-format-reason-onnx')?.textContent).toContain('onnxruntime-genai')
    expect(radio('export-quant-q4_k_m').disabled).toBe(true)
    expect(byTestId('export-quant-reason-q4_k_m')?.textContent).toContain('llama-cpp-python')
    expect(estimates(seen).at(-1)?.get('quantization')).toBe('q8_0')
    expect(byTestId('export-estimate-size')?.textContent).toContain('98 KB')
    expect(byTestId('export-estimate-memory')?.textContent).toContain('3.0 MB')

    // Another quantization: a new estimate.
    radio('export-quant-f16').click()
    await settle()
    expect(estimates(seen).at(-1)?.get('quantization')).toBe('f16')
    expect(byTestId('export-estimate-size')?.textContent).toContain('195 KB')
    radio('export-quant-q8_0').click()
    await settle()

    ;(byTestId('export-submit') as HTMLElement).click()
    await settle()
    const post = seen.find((r) => r.method === 'POST' && r.path.endsWith('/exports'))!
    expect(post.body).toEqual({ format: 'gguf', quantization: 'q8_0' })
    await flush()
    // The job succeeded and the version is ready: verification, files and commands.
    const status = byTestId('export-dialog')!.querySelector('[data-testid="export-status"]')!
    expect(status.querySelector('[data-testid="export-verification"]')?.textContent).toContain(
      'Identical to the source: 16 tokens compared',
    )
    expect(status.querySelector('[data-testid="export-sha256"]')?.textContent).toBe('ab'.repeat(32))
    expect(status.querySelector('[data-testid="export-file-download"]')?.getAttribute('data-file')).toBe(
      'ft-demo-tiny-q8_0.gguf',
    )
    expect(status.querySelector('[data-testid="export-command-llama_cli"]')?.textContent).toBe(
      'llama-cli -m ft-demo-tiny-q8_0.gguf -p Hello -n 128',
    )
  })

  it('shows why an export failed, in the UI language', async () => {
    fakeServer((req) => {
      if (req.path === '/api/models/5') return json(200, MODEL)
      if (req.path === '/api/models/5/versions') return json(200, { items: [VERSION] })
      if (req.path === '/api/models/versions/21/scores') return json(200, { items: [] })
      if (req.path === '/api/exports/formats') return json(200, { formats: FORMATS })
      if (req.path.endsWith('/exports/estimate')) return json(200, { file_bytes: 1, memory_bytes: null })
      if (req.method === 'POST') return json(201, { job_id: 91, version: { id: 23, number: 3, status: 'exporting' } })
      if (req.path === '/api/jobs/91') {
        return json(200, { id: 91, status: 'failed', progress: 0, error: { code: 'engine_error', message: 'x' } })
      }
      if (req.path === '/api/jobs/91/events') {
        return json(200, { items: [{ seq: 1, type: 'error', code: 'disk_full', message: 'no room' }], last_seq: 1 })
      }
      if (req.path === '/api/models/versions/23') return json(200, { ...EXPORTED, id: 23, status: 'failed' })
      return undefined
    })
    await mountView(ModelDetailView, '/models/5')
    ;(byTestId('version-export-1') as HTMLElement).click()
    await settle()
    ;(byTestId('export-submit') as HTMLElement).click()
    await settle()
    expect(byTestId('export-phase')?.getAttribute('data-phase')).toBe('failed')
    expect(byTestId('export-error')?.textContent).toContain('not enough free disk space')
  })

  it('shows an exported version with its format, quantization and verification, without chat or deploy', async () => {
    fakeServer((req) => {
      if (req.path === '/api/models/5') return json(200, MODEL)
      if (req.path === '/api/models/5/versions') return json(200, { items: [EXPORTED, VERSION] })
      if (req.path.endsWith('/scores')) return json(200, { items: [] })
      return undefined
    })
    await mountView(ModelDetailView, '/models/5')
    ;(byTestId('version-row-2') as HTMLElement).click()
    await flush()
    expect(byTestId('version-format-2')?.textContent).toContain('GGUF')
    expect(byTestId('version-quant-2')?.textContent).toContain('Q8_0')
    expect(byTestId('version-chat-2')).toBeNull()
    expect(byTestId('version-export-2')).toBeNull()
    expect(byTestId('model-export-card')?.querySelector('[data-testid="export-verification"]')).not.toBeNull()
  })
})
