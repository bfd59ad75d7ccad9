/**
 * The new-evaluation form as data: its fields and defaults, the prefill from `?models=a,b&dataset=ID`,
 * which metric options apply to the chosen metrics, and the request body built from it (only what the
 * user set, so the server's defaults stay the defaults). Plain TypeScript, tested on its own.
 */
import type { EvalOptions, EvaluationCreate, JudgeMode, Metric, Split } from '@/api/evaluations'
import { METRICS } from '@/api/evaluations'
import { NAME_MAX_LENGTH } from '@/lib/names'

export const MAX_MODELS = 8

export interface EvalForm {
  name: string
  description: string
  models: string[]
  dataset: number | null
  /** null: the dataset's current version. */
  datasetVersion: number | null
  split: Split
  metrics: Metric[]
  maxNewTokens: number
  temperature: number
  topP: number
  /** null: every row. */
  maxSamples: number | null
  caseSensitive: boolean
  regexPattern: string
  /** JSON text; empty: any valid JSON passes. */
  jsonSchema: string
  nShot: number
  judgeModel: string
  judgeMode: JudgeMode
  /** Empty: the built-in prompt. */
  judgePrompt: string
  shared: boolean
  start: boolean
}

export function emptyForm(): EvalForm {
  return {
    name: '',
    description: '',
    models: [],
    dataset: null,
    datasetVersion: null,
    split: 'all',
    metrics: ['bleu', 'rouge'],
    maxNewTokens: 256,
    temperature: 0,
    topP: 1,
    maxSamples: null,
    caseSensitive: false,
    regexPattern: '',
    jsonSchema: '',
    nShot: 0,
    judgeModel: '',
    judgeMode: 'single',
    judgePrompt: '',
    shared: false,
    start: true,
  }
}

/** The options each metric reads; an option shows in the form only when one of its metrics is chosen. */
export const OPTION_METRICS = {
  caseSensitive: ['exact_match', 'contains'],
  regexPattern: ['regex'],
  jsonSchema: ['valid_json'],
  nShot: ['multiple_choice'],
  judge: ['judge'],
} as const satisfies Record<string, readonly Metric[]>
export type OptionName = keyof typeof OPTION_METRICS

export function optionShown(option: OptionName, metrics: readonly Metric[]): boolean {
  return OPTION_METRICS[option].some((m) => (metrics as readonly string[]).includes(m))
}

/** The server's field paths → the form's field names (for errors placed next to their input). */
export const FORM_FIELDS = [
  'name',
  'description',
  'models',
  'dataset',
  'dataset_version',
  'split',
  'metrics',
  'max_new_tokens',
  'temperature',
  'top_p',
  'max_samples',
  'case_sensitive',
  'regex_pattern',
  'json_schema',
  'n_shot',
  'judge_model',
  'judge_mode',
  'judge_prompt',
] as const
export type FormField = (typeof FORM_FIELDS)[number]

/**
 * The generation settings' number inputs, in the form's order: the form field, the server's field
 * (where its error lands), the input's bounds, and its test id. The label is
 * `evaluations.form.<key>`.
 */
export const GENERATION_INPUTS: readonly {
  key: 'maxNewTokens' | 'temperature' | 'topP' | 'maxSamples'
  field: FormField
  testid: string
  input: Record<string, number | boolean | null>
}[] = [
  { key: 'maxNewTokens', field: 'max_new_tokens', testid: 'eval-max-new-tokens', input: { min: 1, max: 4096 } },
  {
    key: 'temperature',
    field: 'temperature',
    testid: 'eval-temperature',
    input: { min: 0, max: 2, step: 0.1, precision: 2 },
  },
  { key: 'topP', field: 'top_p', testid: 'eval-top-p', input: { min: 0.01, max: 1, step: 0.05, precision: 2 } },
  // No bound above and no arrows: empty means every row.
  {
    key: 'maxSamples',
    field: 'max_samples',
    testid: 'eval-max-samples',
    input: { min: 1, controls: false, valueOnClear: null },
  },
]

export const FIELD_ALIASES: Readonly<Record<string, FormField>> = {
  'judge.model': 'judge_model',
  'judge.mode': 'judge_mode',
  'judge.prompt': 'judge_prompt',
  judge: 'judge_model',
  ...Object.fromEntries(Array.from({ length: MAX_MODELS }, (_, i) => [`models[${i}]`, 'models' as const])),
}

function first(value: unknown): string | null {
  const raw = Array.isArray(value) ? value[0] : value
  return typeof raw === 'string' ? raw : null
}

/** What `?models=a,b&dataset=ID&version=ID` asks the form to start with (unknown parts are ignored). */
export function prefillFromQuery(query: Record<string, unknown>): Partial<EvalForm> {
  const out: Partial<EvalForm> = {}
  const models = first(query.models)
  if (models) {
    const names = [...new Set(models.split(',').map((m) => m.trim()))].filter((m) => m.length > 0)
    if (names.length > 0) out.models = names.slice(0, MAX_MODELS)
  }
  const dataset = Number(first(query.dataset))
  if (Number.isInteger(dataset) && dataset > 0) out.dataset = dataset
  const version = Number(first(query.version))
  if (out.dataset !== undefined && Number.isInteger(version) && version > 0) out.datasetVersion = version
  return out
}

/** A default name from the models and the dataset ("demo-tiny vs ft:… · my-data"): no words to translate. */
export function suggestName(models: readonly string[], datasetName: string | null): string {
  const who = models.length === 0 ? '' : models.length <= 2 ? models.join(' vs ') : `${models[0]} +${models.length - 1}`
  return [who, datasetName ?? ''].filter(Boolean).join(' · ').slice(0, NAME_MAX_LENGTH)
}

/**
 * The engine's built-in judge prompts (engine/eval/judge.py SCORE_PROMPT / PAIRWISE_PROMPT), shown in
 * the form so people edit from them; a prompt left as it is is not sent, so the engine's stays in use.
 */
export const DEFAULT_JUDGE_PROMPTS: Readonly<Record<JudgeMode, string>> = {
  single:
    'You are a strict grader. Compare the answer with the reference answer to the question and rate ' +
    "the answer's correctness and helpfulness from 1 (wrong) to 10 (as good as the reference).\n\n" +
    'Question:\n{question}\n\nReference answer:\n{reference}\n\nAnswer to grade:\n{answer}\n\n' +
    'Reply with one line "Score: <1-10>" and then one sentence giving the reason.',
  pairwise:
    'You are a strict grader. Which answer to the question is better, given the reference answer?\n\n' +
    'Question:\n{question}\n\nReference answer:\n{reference}\n\nAnswer A:\n{answer_a}\n\n' +
    'Answer B:\n{answer_b}\n\nReply with one line "Verdict: A", "Verdict: B" or "Verdict: tie", ' +
    'then one sentence giving the reason.',
}

/** The placeholders a judge prompt must contain, per mode (the engine refuses others). */
export const JUDGE_FIELDS: Readonly<Record<JudgeMode, readonly string[]>> = {
  single: ['question', 'reference', 'answer'],
  pairwise: ['question', 'reference', 'answer_a', 'answer_b'],
}

export class FormProblem extends Error {
  constructor(
    readonly field: FormField,
    readonly key: string,
  ) {
    super(key)
  }
}

/**
 * The POST /api/evaluations body. Throws a FormProblem (field + message key) for what the browser can
 * tell is wrong before asking the server: no model, no dataset, no metric, a schema that is not JSON.
 */
export function buildPayload(form: EvalForm): EvaluationCreate {
  if (!form.name.trim()) throw new FormProblem('name', 'evaluations.form.errors.name')
  if (form.models.length === 0) throw new FormProblem('models', 'evaluations.form.errors.models')
  if (form.dataset === null) throw new FormProblem('dataset', 'evaluations.form.errors.dataset')
  if (form.metrics.length === 0) throw new FormProblem('metrics', 'evaluations.form.errors.metrics')
  const metrics = METRICS.filter((m) => form.metrics.includes(m))

  const options: EvalOptions = {}
  if (form.maxSamples !== null && form.maxSamples > 0) options.max_samples = form.maxSamples
  if (optionShown('caseSensitive', metrics) && form.caseSensitive) options.case_sensitive = true
  if (optionShown('regexPattern', metrics)) {
    if (!form.regexPattern) throw new FormProblem('regex_pattern', 'evaluations.form.errors.regex')
    options.regex_pattern = form.regexPattern
  }
  if (optionShown('jsonSchema', metrics) && form.jsonSchema.trim()) {
    let schema: unknown
    try {
      schema = JSON.parse(form.jsonSchema)
    } catch {
      throw new FormProblem('json_schema', 'evaluations.form.errors.schema')
    }
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema))
      throw new FormProblem('json_schema', 'evaluations.form.errors.schema')
    options.json_schema = schema as Record<string, unknown>
  }
  if (optionShown('nShot', metrics) && form.nShot > 0) options.n_shot = form.nShot

  let judge: EvaluationCreate['judge'] = null
  if (optionShown('judge', metrics)) {
    if (!form.judgeModel) throw new FormProblem('judge_model', 'evaluations.form.errors.judgeModel')
    judge = { model: form.judgeModel, mode: form.judgeMode }
    const prompt = form.judgePrompt.trim()
    if (prompt && prompt !== DEFAULT_JUDGE_PROMPTS[form.judgeMode].trim()) {
      const missing = JUDGE_FIELDS[form.judgeMode].filter((f) => !prompt.includes(`{${f}}`))
      if (missing.length > 0) throw new FormProblem('judge_prompt', 'evaluations.form.errors.judgePrompt')
      judge.prompt = form.judgePrompt
    }
  }

  const body: EvaluationCreate = {
    name: form.name.trim(),
    description: form.description.trim(),
    models: [...form.models],
    dataset: form.dataset,
    split: form.split,
    metrics,
    generation: { max_new_tokens: form.maxNewTokens, temperature: form.temperature, top_p: form.topP },
    shared: form.shared,
    start: form.start,
  }
  if (form.datasetVersion !== null) body.dataset_version = form.datasetVersion
  if (Object.keys(options).length > 0) body.options = options
  if (judge) body.judge = judge
  return body
}
