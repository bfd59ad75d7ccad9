/**
 * The new-job form's model, kept free of Vue so it can be tested directly.
 *
 * The form edits a spec in the engine's vocabulary. Each field is shown as text (or a boolean /
 * an enum choice) and turned back into a typed value with the rules of the spec's JSON schema, so
 * client-side validation says the same thing the server would. An empty field means "the engine's
 * default" and leaves the key out of the spec: exported YAML and saved templates stay short.
 */
import { splitFormErrors, asApiError } from '@/api/errors'
import type { JobSpec, SchemaProperty, SpecSchema } from '@/api/jobs'

/** What the form shows under "Method": LoRA, QLoRA (LoRA + 4-bit base), full weights, freeze. */
export type Method = 'lora' | 'qlora' | 'full' | 'freeze'
export const METHODS: readonly Method[] = ['lora', 'qlora', 'full', 'freeze']

/** Keys that have their own widgets at the top of the form; the rest are drawn from the schema. */
export const OWN_WIDGET_KEYS = [
  'model_name_or_path',
  'dataset',
  'dataset_version',
  'stage',
  'finetuning_type',
  'quantization_bit',
  'max_steps',
  'learning_rate',
] as const

/** Keys that only matter for LoRA-style methods (hidden for full/freeze). */
export const LORA_KEYS = [
  'lora_rank',
  'lora_alpha',
  'lora_target',
  'lora_dropout',
  'additional_target',
  'use_rslora',
  'use_dora',
  'pissa_init',
  'pissa_iter',
  'pissa_convert',
  'loraplus_lr_ratio',
  'loraplus_lr_embedding',
]
const LORA_METHODS: readonly Method[] = ['lora', 'qlora']
/** Keys that only matter for freeze tuning. */
export const FREEZE_KEYS = ['freeze_trainable_layers', 'freeze_trainable_modules', 'freeze_extra_modules']
/** Keys that only matter for preference (DPO) training. */
export const PREF_KEYS = ['pref_beta', 'pref_loss', 'pref_ftx', 'dpo_label_smoothing']
/** Keys that only matter for KTO training (which also uses pref_beta). */
export const KTO_KEYS = ['kto_chosen_weight', 'kto_rejected_weight']
/** Keys that only matter with a quantized base. */
export const QUANT_KEYS = ['quantization_method', 'quantization_type', 'double_quantization']

export const DEMO_MODEL = 'demo-tiny'

export function methodOf(spec: JobSpec): Method {
  if (spec.finetuning_type === 'full') return 'full'
  if (spec.finetuning_type === 'freeze') return 'freeze'
  return spec.quantization_bit === 4 || spec.quantization_bit === 8 ? 'qlora' : 'lora'
}

/** Write a method into a spec: the keys that express it, and nothing else. */
export function applyMethod(spec: JobSpec, method: Method): JobSpec {
  const next = { ...spec }
  next.finetuning_type = method === 'qlora' ? 'lora' : method
  if (method === 'qlora') {
    if (next.quantization_bit !== 8) next.quantization_bit = 4
  } else {
    delete next.quantization_bit
  }
  return next
}

/** Whether a schema field applies to the spec as it stands (progressive disclosure). */
export function isRelevant(key: string, spec: JobSpec): boolean {
  const method = methodOf(spec)
  // PiSSA rewrites the base weights, which a quantized base cannot hold (the server refuses it too).
  if (key === 'pissa_init') return method === 'lora'
  if (key === 'pissa_iter' || key === 'pissa_convert') return method === 'lora' && spec.pissa_init === true
  if (key === 'loraplus_lr_embedding') return LORA_METHODS.includes(method) && spec.loraplus_lr_ratio != null
  if (LORA_KEYS.includes(key)) return method === 'lora' || method === 'qlora'
  if (FREEZE_KEYS.includes(key)) return method === 'freeze'
  if (QUANT_KEYS.includes(key)) return method === 'qlora'
  if (KTO_KEYS.includes(key)) return spec.stage === 'kto'
  if (key === 'pref_beta') return spec.stage === 'dpo' || spec.stage === 'kto'
  if (PREF_KEYS.includes(key)) return (spec.stage ?? 'sft') === 'dpo'
  return true
}

// ----- reading the schema -----

export type FieldKind = 'boolean' | 'enum' | 'integer' | 'number' | 'string' | 'list'

export interface FieldInfo {
  key: string
  kind: FieldKind
  /** Enum choices (kind "enum"). */
  options: unknown[]
  nullable: boolean
  description: string
  title: string
  default: unknown
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  /** For "list": the item type. */
  itemKind?: 'integer' | 'number' | 'string'
  /** Words accepted besides a list (e.g. devices: "auto" | "cpu" | [0, 1]). */
  words: string[]
}

function typesOf(prop: SchemaProperty): string[] {
  if (Array.isArray(prop.type)) return prop.type
  return prop.type ? [prop.type] : []
}

/** The variants of a property (its anyOf, or itself). */
function variants(prop: SchemaProperty): SchemaProperty[] {
  return prop.anyOf && prop.anyOf.length > 0 ? prop.anyOf : [prop]
}

export function fieldInfo(key: string, prop: SchemaProperty | undefined): FieldInfo {
  const p: SchemaProperty = prop ?? {}
  const all = variants(p)
  const nullable = all.some((v) => typesOf(v).includes('null'))
  const concrete = all.filter((v) => !typesOf(v).includes('null') || v.enum)
  const info: FieldInfo = {
    key,
    kind: 'string',
    options: [],
    nullable,
    description: p.description ?? '',
    title: p.title ?? key,
    default: p.default,
    words: [],
  }
  const enums = concrete.filter((v) => Array.isArray(v.enum))
  const lists = concrete.filter((v) => typesOf(v).includes('array'))
  const numeric = concrete.find((v) => typesOf(v).some((t) => t === 'integer' || t === 'number') && !v.enum)
  const bounds = numeric ?? p
  info.minimum = bounds.minimum
  info.maximum = bounds.maximum
  info.exclusiveMinimum = bounds.exclusiveMinimum
  info.exclusiveMaximum = bounds.exclusiveMaximum
  if (lists.length > 0) {
    info.kind = 'list'
    const itemTypes = typesOf(lists[0]!.items ?? {})
    info.itemKind = itemTypes.includes('integer') ? 'integer' : itemTypes.includes('number') ? 'number' : 'string'
    info.words = enums.flatMap((v) => (v.enum ?? []).map(String))
  } else if (enums.length > 0 && !numeric) {
    info.kind = 'enum'
    info.options = enums.flatMap((v) => v.enum ?? [])
  } else if (concrete.some((v) => typesOf(v).includes('boolean'))) {
    info.kind = 'boolean'
  } else if (numeric) {
    info.kind = typesOf(numeric).includes('integer') ? 'integer' : 'number'
  } else if (concrete.some((v) => typesOf(v).includes('integer'))) {
    info.kind = 'integer'
  } else if (concrete.some((v) => typesOf(v).includes('number'))) {
    info.kind = 'number'
  }
  return info
}

export function schemaFields(schema: SpecSchema | null): Record<string, FieldInfo> {
  const out: Record<string, FieldInfo> = {}
  const props = schema?.schema.properties ?? {}
  for (const [key, prop] of Object.entries(props)) out[key] = fieldInfo(key, prop)
  return out
}

// ----- text ⇄ value -----

/** How a spec value is shown in a text box. */
export function toText(value: unknown): string {
  if (value === undefined || value === null) return ''
  if (Array.isArray(value)) return value.map(String).join(', ')
  return String(value)
}

export type Parsed = { ok: true; value: unknown } | { ok: false; error: FieldError }
/** A client-side problem with a field, as an i18n key + params (the view translates it). */
export interface FieldError {
  key: string
  params?: Record<string, unknown>
}

function checkBounds(info: FieldInfo, n: number): FieldError | null {
  if (info.minimum !== undefined && n < info.minimum)
    return { key: 'jobs.form.errors.min', params: { min: info.minimum } }
  if (info.maximum !== undefined && n > info.maximum)
    return { key: 'jobs.form.errors.max', params: { max: info.maximum } }
  if (info.exclusiveMinimum !== undefined && n <= info.exclusiveMinimum)
    return { key: 'jobs.form.errors.above', params: { min: info.exclusiveMinimum } }
  if (info.exclusiveMaximum !== undefined && n >= info.exclusiveMaximum)
    return { key: 'jobs.form.errors.below', params: { max: info.exclusiveMaximum } }
  return null
}

function parseNumber(text: string, integer: boolean): number | null {
  const trimmed = text.trim()
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(trimmed)) return null
  const n = Number(trimmed)
  if (!Number.isFinite(n)) return null
  if (integer && !Number.isInteger(n)) return null
  return n
}

/**
 * Text from the form → the spec value. Empty → `undefined` (leave the key out: the default).
 * Booleans and enum choices arrive as values already and pass through.
 */
export function parseField(info: FieldInfo, input: unknown): Parsed {
  if (input === undefined || input === null || input === '') return { ok: true, value: undefined }
  if (info.kind === 'boolean') return { ok: true, value: Boolean(input) }
  if (info.kind === 'enum') {
    const match = info.options.find((o) => String(o) === String(input))
    return match === undefined
      ? { ok: false, error: { key: 'jobs.form.errors.choice', params: { options: info.options.join(', ') } } }
      : { ok: true, value: match }
  }
  const text = String(input)
  if (info.kind === 'integer' || info.kind === 'number') {
    const n = parseNumber(text, info.kind === 'integer')
    if (n === null)
      return {
        ok: false,
        error: { key: info.kind === 'integer' ? 'jobs.form.errors.integer' : 'jobs.form.errors.number' },
      }
    const bad = checkBounds(info, n)
    return bad ? { ok: false, error: bad } : { ok: true, value: n }
  }
  if (info.kind === 'list') {
    const trimmed = text.trim()
    if (info.words.includes(trimmed)) return { ok: true, value: trimmed }
    const parts = trimmed
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0)
    if (info.itemKind === 'string') return { ok: true, value: parts }
    const numbers = parts.map((s) => parseNumber(s, info.itemKind === 'integer'))
    if (numbers.some((n) => n === null)) {
      return { ok: false, error: { key: 'jobs.form.errors.list', params: { words: info.words.join(', ') } } }
    }
    return { ok: true, value: numbers }
  }
  return { ok: true, value: text.trim() === '' ? undefined : text.trim() }
}

// ----- the whole form -----

/** One field's value: text for text boxes, the value itself for switches and selects; undefined = unset. */
export type FormValue = string | number | boolean | undefined
/** Form values keyed by spec key. */
export type FormValues = Record<string, FormValue>

export function valuesFromSpec(spec: JobSpec, fields: Record<string, FieldInfo>): FormValues {
  const values: FormValues = {}
  for (const [key, value] of Object.entries(spec)) {
    const info = fields[key]
    if (!info || value === null || value === undefined) continue
    const keepsValue =
      (info.kind === 'boolean' || info.kind === 'enum') && ['string', 'number', 'boolean'].includes(typeof value)
    values[key] = keepsValue ? (value as FormValue) : toText(value)
  }
  return values
}

export interface BuiltSpec {
  spec: JobSpec
  errors: Record<string, FieldError>
}

/**
 * The spec the form describes: `base` (keys the form does not show, e.g. from a template) overlaid
 * with every shown field that has a value and applies to the chosen method/stage.
 */
export function buildSpec(values: FormValues, fields: Record<string, FieldInfo>, base: JobSpec = {}): BuiltSpec {
  const spec: JobSpec = {}
  for (const [key, value] of Object.entries(base)) if (!(key in fields)) spec[key] = value
  const errors: Record<string, FieldError> = {}
  for (const [key, input] of Object.entries(values)) {
    const info = fields[key]
    if (!info) continue
    const parsed = parseField(info, input)
    if (!parsed.ok) errors[key] = parsed.error
    else if (parsed.value !== undefined) spec[key] = parsed.value
  }
  for (const key of Object.keys(spec)) if (!isRelevant(key, spec)) delete spec[key]
  if (spec.model_name_or_path === undefined) errors.model_name_or_path = { key: 'jobs.form.errors.required' }
  if (spec.dataset === undefined) errors.dataset = { key: 'jobs.form.errors.required' }
  return { spec, errors }
}

/** Keys a form should never send back: set by the server (output_dir, dataset paths, …). */
export function withoutHidden(spec: JobSpec, schema: SpecSchema | null): JobSpec {
  const hidden = new Set(schema?.groups.hidden ?? [])
  return Object.fromEntries(Object.entries(spec).filter(([key]) => !hidden.has(key)))
}

/**
 * A server error → messages per form field. The server names spec fields `body.spec.<key>`
 * (`body.name` for the job name); anything it cannot place goes to `general`.
 */
export function serverFieldErrors(
  err: unknown,
  keys: readonly string[],
): { fields: Record<string, string>; general: string | null } {
  return splitFormErrors(asApiError(err), ['name', ...keys])
}

/** Whether any of these field errors sits in the advanced group (so the view opens it). */
export function touchesAdvanced(errorKeys: Iterable<string>, schema: SpecSchema | null): boolean {
  const advanced = new Set(schema?.groups.advanced ?? [])
  for (const key of errorKeys) if (advanced.has(key)) return true
  return false
}

// ----- YAML -----

const PLAIN = /^[A-Za-z_][A-Za-z0-9_./@:-]*$/
const YAML_WORDS = new Set(['true', 'false', 'null', 'yes', 'no', 'on', 'off', '~'])

function yamlScalar(value: unknown): string {
  if (typeof value === 'string') {
    // JSON strings are valid YAML double-quoted scalars; plain words stay unquoted for readability.
    return PLAIN.test(value) && !YAML_WORDS.has(value.toLowerCase()) ? value : JSON.stringify(value)
  }
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return JSON.stringify(value) // flow style: also valid YAML
}

/** A spec as YAML (flat keys; lists and objects in flow style), sorted as the form shows them. */
export function specToYaml(spec: JobSpec, order: readonly string[] = []): string {
  const rank = (key: string) => {
    const i = order.indexOf(key)
    return i < 0 ? order.length : i
  }
  const keys = Object.keys(spec).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
  return keys.map((key) => `${key}: ${yamlScalar(spec[key])}`).join('\n') + '\n'
}
