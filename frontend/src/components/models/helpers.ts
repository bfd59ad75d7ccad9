/**
 * Pure helpers of the models, deployments and providers pages: number formats, the lineage chain
 * of a version, the name/URL rules the server enforces (checked before submitting so the form can
 * say what is wrong at once), and the provider presets.
 */
import type { Provider } from '@/api/providers'
import type { ModelInfo, ModelVersion, RegisteredModel, VersionMetrics } from '@/api/models'
import { NAME_MAX_LENGTH } from '@/lib/names'

/** The built-in demo model: always servable, never a registry row (so it has no detail page). */
export const DEMO_MODEL = 'demo-tiny'

// ----- numbers -----

/** 97_000 → "97K", 7_400_000 → "7.4M", 494_000_000 → "0.49B", 7_600_000_000 → "7.6B". */
export function formatParams(count: number | null | undefined): string {
  if (count === null || count === undefined || !Number.isFinite(count) || count < 0) return '—'
  // Models from ~100M up are usually spoken of in billions (Qwen2.5-0.5B), so switch early.
  if (count >= 1e8) return `${trim(count / 1e9)}B`
  if (count >= 1e6) return `${trim(count / 1e6)}M`
  if (count >= 1e3) return `${trim(count / 1e3)}K`
  return String(Math.round(count))
}

function trim(value: number): string {
  const digits = value >= 10 ? 1 : 2
  return String(Number(value.toFixed(value >= 100 ? 0 : digits)))
}

/** 32768 → "32K", 2048 → "2K", 1000 → "1000" (context windows are powers of two by habit). */
export function formatContext(tokens: number | null | undefined): string {
  if (tokens === null || tokens === undefined || !Number.isFinite(tokens) || tokens <= 0) return '—'
  if (tokens >= 1024 && tokens % 1024 === 0) return `${tokens / 1024}K`
  return String(tokens)
}

/** A loss to 4 significant digits, or — when there is none. */
export function formatLoss(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—'
  return String(Number(value.toPrecision(4)))
}

// ----- what a row shows -----

type Translate = (key: string, params?: Record<string, unknown>) => string

/** The training (or merge) job behind a model's current version, if it came from one. */
export function sourceJobOf(model: Pick<RegisteredModel, 'current_version'>): ModelVersion['source_job'] {
  return model.current_version?.source_job ?? null
}

// What servers before the lineage links wrote as a fine-tuned model's description, in English.
const GENERATED_DESCRIPTION = /^Fine-tuned by job (\d+) \((.*)\)$/s

/** A model's description to show: the owner's text, or an old generated one in the UI's language. */
export function descriptionText(description: string, t: Translate): string {
  const generated = GENERATED_DESCRIPTION.exec(description)
  return generated ? t('jobsModels.generatedDescription', { id: generated[1], name: generated[2] }) : description
}

/** The detected folder info of a model: its current version's. */
export function modelInfo(model: Pick<RegisteredModel, 'current_version'>): ModelInfo {
  return model.current_version?.info ?? {}
}

/**
 * The architecture column: detected from config.json for full weights; an adapter folder has no
 * config.json, so it shows what the adapter is (`LORA r8`) instead.
 */
export function architectureLabel(info: ModelInfo): string {
  if (typeof info.architecture === 'string' && info.architecture) return info.architecture
  if (typeof info.peft_type === 'string' && info.peft_type) {
    return typeof info.lora_rank === 'number' ? `${info.peft_type} r${info.lora_rank}` : info.peft_type
  }
  return '—'
}

export function ownerLabel(model: Pick<RegisteredModel, 'owner' | 'owner_id'>): string {
  return model.owner || `#${model.owner_id}`
}

/** The /v1 model id of one version: `name@vN` (the bare name means "the current version"). */
export function versionModelId(modelName: string, version: Pick<ModelVersion, 'number'>): string {
  return `${modelName}@v${version.number}`
}

/** Link to the chat page with a model picked. */
export function chatLink(modelId: string): { name: string; query: { model: string } } {
  return { name: 'chat', query: { model: modelId } }
}

function firstNumber(...values: unknown[]): number | null {
  for (const value of values) if (typeof value === 'number' && Number.isFinite(value)) return value
  return null
}

/** The last training loss the job reported. */
export function finalLoss(metrics: VersionMetrics | null | undefined): number | null {
  return firstNumber(metrics?.final_train_loss, metrics?.train_loss, metrics?.loss)
}

export function evalLoss(metrics: VersionMetrics | null | undefined): number | null {
  return firstNumber(metrics?.final_eval_loss, metrics?.eval_loss)
}

// ----- lineage -----

export type LineageKind = 'base' | 'parent' | 'exportedFrom' | 'version' | 'job' | 'exportJob' | 'dataset'

/** One box of the lineage chain; `to` is a router location when the node has a page. */
export interface LineageNode {
  kind: LineageKind
  label: string
  detail?: string
  to?: { name: string; params: { id: number } }
}

/**
 * base model → (adapter version it was merged from) → this version → source job → dataset version.
 * Each node appears only when the version knows it; the version itself is always there.
 */
export function buildLineage(model: Pick<RegisteredModel, 'name'>, version: ModelVersion): LineageNode[] {
  const nodes: LineageNode[] = []
  const base = version.base
  if (base) {
    const node: LineageNode = { kind: 'base', label: base.name }
    // A registered base links to its page; demo-tiny and hub ids have none.
    if (base.model_id) node.to = { name: 'model-detail', params: { id: base.model_id } }
    else if (base.ref && base.ref !== base.name) node.detail = base.ref
    nodes.push(node)
  }
  // An export (GGUF, ONNX, ...) points at the version it was converted from, and its job is the export's.
  const exported = !!version.format && version.format !== 'safetensors'
  if (version.parent_version_id) {
    nodes.push({ kind: exported ? 'exportedFrom' : 'parent', label: `#${version.parent_version_id}` })
  }
  nodes.push({ kind: 'version', label: model.name, detail: `v${version.number} · ${version.weights}` })
  const job = version.source_job
  if (job) {
    nodes.push({
      kind: exported ? 'exportJob' : 'job',
      label: job.name || `#${job.id}`,
      detail: job.status ? `#${job.id} · ${job.status}` : `#${job.id}`,
      to: { name: 'job-detail', params: { id: job.id } },
    })
  }
  const dataset = version.dataset
  if (dataset) {
    nodes.push({
      kind: 'dataset',
      label: dataset.name || `#${dataset.id}`,
      detail: `v${dataset.version_number}`,
      to: { name: 'dataset-detail', params: { id: dataset.id } },
    })
  }
  return nodes
}

// ----- tags -----

export const MAX_TAG_LENGTH = 64
export const MAX_TAGS = 32

/** Trimmed, non-empty, without repeats (first one wins), at most MAX_TAGS of at most MAX_TAG_LENGTH. */
export function normalizeTags(tags: readonly string[]): string[] {
  const out: string[] = []
  for (const raw of tags) {
    const tag = raw.trim().slice(0, MAX_TAG_LENGTH)
    if (tag && !out.includes(tag)) out.push(tag)
  }
  return out.slice(0, MAX_TAGS)
}

// ----- validation (the server's rules; its answer still decides) -----

/** A registered model's name; `@v<n>` is reserved for versions, `ft:` for fine-tuned models. */
export const MODEL_NAME_PATTERN = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,${NAME_MAX_LENGTH - 1}}$`)
/** `org/name` on the Hugging Face Hub. */
export const HUB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/
export const PROVIDER_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/

/** The i18n key (under models.validation) of what is wrong with a model name, or null. */
export function modelNameProblem(name: string): string | null {
  const value = name.trim()
  if (!value) return 'required'
  if (!MODEL_NAME_PATTERN.test(value)) return 'modelName'
  if (/@v\d+$/.test(value)) return 'modelNameVersion'
  if (value.startsWith('ft:')) return 'modelNameFt'
  if (value === DEMO_MODEL) return 'modelNameReserved'
  return null
}

export function hubIdProblem(ref: string): string | null {
  const value = ref.trim()
  if (!value) return 'required'
  return HUB_ID_PATTERN.test(value) ? null : 'hubId'
}

export function folderProblem(ref: string): string | null {
  const value = ref.trim()
  if (!value) return 'required'
  return value.startsWith('/') ? null : 'absolutePath'
}

export function providerNameProblem(name: string): string | null {
  const value = name.trim()
  if (!value) return 'required'
  return PROVIDER_NAME_PATTERN.test(value) ? null : 'providerName'
}

/** An http(s) URL with a host; the gateway appends /chat/completions and /models to it. */
export function baseUrlProblem(url: string): string | null {
  const value = url.trim()
  if (!value) return 'required'
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    return 'url'
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'url'
  if (!parsed.hostname) return 'url'
  return null
}

// ----- providers -----

export interface ProviderPreset {
  key: string
  label: string
  base_url: string
  name: string
}

export const PROVIDER_PRESETS: readonly ProviderPreset[] = [
  { key: 'openai', label: 'OpenAI', base_url: 'https://api.openai.com/v1', name: 'openai' },
  { key: 'deepseek', label: 'DeepSeek', base_url: 'https://api.deepseek.com/v1', name: 'deepseek' },
  { key: 'ollama', label: 'Ollama', base_url: 'http://127.0.0.1:11434/v1', name: 'ollama' },
  { key: 'siliconflow', label: 'SiliconFlow', base_url: 'https://api.siliconflow.cn/v1', name: 'siliconflow' },
  { key: 'vllm', label: 'vLLM', base_url: 'http://127.0.0.1:8000/v1', name: 'vllm' },
]

/** "••••abcd" for a stored key, "" when there is none. */
export function keyMask(provider: Pick<Provider, 'has_api_key' | 'api_key_last4'>): string {
  if (!provider.has_api_key) return ''
  return `••••${provider.api_key_last4 ?? ''}`
}

// ----- whole forms: field → i18n key under models.validation -----

export type FormProblems<F extends string> = Partial<Record<F, string>>

export interface RegisterForm {
  name: string
  source: 'hub' | 'local'
  ref: string
}

export function registerFormProblems(form: RegisterForm): FormProblems<'name' | 'ref'> {
  const problems: FormProblems<'name' | 'ref'> = {}
  const name = modelNameProblem(form.name)
  if (name) problems.name = name
  const ref = form.source === 'hub' ? hubIdProblem(form.ref) : folderProblem(form.ref)
  if (ref) problems.ref = ref
  return problems
}

export interface ProviderForm {
  name: string
  base_url: string
}

export function providerFormProblems(form: ProviderForm): FormProblems<'name' | 'base_url'> {
  const problems: FormProblems<'name' | 'base_url'> = {}
  const name = providerNameProblem(form.name)
  if (name) problems.name = name
  const url = baseUrlProblem(form.base_url)
  if (url) problems.base_url = url
  return problems
}
