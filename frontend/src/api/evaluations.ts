/**
 * The evaluations API as the views use it: evaluations (models × one test set × metrics), their runs
 * (one per model, each scored by a job), per-sample results, comparisons across evaluations and the
 * reports (file downloads). Calls go through the typed client.
 *
 * The server describes a few JSON columns only in prose (`generation`, `options`, `judge`, a run's
 * `results`, `metrics` as metric names): `Evaluation` and `EvaluationRun` are the generated types with
 * those fields given the shapes the server documents, and `refine` is the one place that narrows them.
 */
import { api, unwrap } from './client'
import { downloadFile, withQuery } from './http'
import type { components, operations } from './schema'

type Schemas = components['schemas']

/** Metric names the API and the engine share. */
export const METRICS = [
  'bleu',
  'rouge',
  'sacrebleu',
  'chrf',
  'exact_match',
  'contains',
  'regex',
  'valid_json',
  'perplexity',
  'multiple_choice',
  'judge',
] as const satisfies readonly Schemas['EvaluationCreate']['metrics'][number][]
export type Metric = (typeof METRICS)[number]

export type EvaluationStatus = Schemas['EvaluationPublic']['status']
export type Split = Schemas['EvaluationCreate']['split']
export type JudgeMode = Schemas['EvaluationJudge']['mode']
export type ReportFormat = 'html' | 'md' | 'csv' | 'jsonl' | 'json'
export const REPORT_FORMATS: readonly ReportFormat[] = ['html', 'md', 'csv', 'jsonl', 'json']

export type EvaluationCreate = Schemas['EvaluationCreate']
export type EvaluationUpdate = Schemas['EvaluationUpdate']
export type Generation = Partial<Schemas['EvaluationGeneration']>
export type EvalOptions = Schemas['EvaluationOptions']
export type JudgeConfig = Schemas['EvaluationJudge']

/** A run's totals once its job succeeded (eval_results.json). */
export interface RunResults {
  metrics: Record<string, number>
  speed?: Record<string, number | null>
  test_set?: Record<string, unknown>
}

export type EvaluationRun = Omit<Schemas['EvaluationRunPublic'], 'results'> & { results: RunResults | null }
export type Evaluation = Omit<
  Schemas['EvaluationPublic'],
  'runs' | 'generation' | 'options' | 'judge' | 'split' | 'metrics'
> & {
  runs: EvaluationRun[]
  generation: Generation
  options: EvalOptions
  judge: JudgeConfig | null
  split: Split
  metrics: Metric[]
}
export interface EvaluationPage extends Omit<Schemas['EvaluationPage'], 'items'> {
  items: Evaluation[]
}
export type EvaluationListQuery = NonNullable<operations['evaluations_list']['parameters']['query']>

export type SampleAnswer = Schemas['SampleAnswer']
export type Sample = Schemas['SampleItem']
export type SamplePage = Schemas['SamplePage']
export type SampleQuery = NonNullable<operations['evaluations_samples']['parameters']['query']>
export type SampleSort = NonNullable<SampleQuery['sort']>
export type Comparison = Schemas['Comparison']
export type CompareRow = Schemas['ComparedRun']
export type Direction = Comparison['direction'][string]

/** The documented shapes of the loosely typed columns (see the module comment). */
const refine = (e: Schemas['EvaluationPublic']): Evaluation => e as Evaluation

const byId = (evaluation_id: number) => ({ params: { path: { evaluation_id } } })
const base = '/api/evaluations'

export const evaluationsApi = {
  async list(query: EvaluationListQuery = {}): Promise<EvaluationPage> {
    const page = unwrap(await api.GET('/api/evaluations', { params: { query } }))
    return { ...page, items: page.items.map(refine) }
  },
  async get(id: number): Promise<Evaluation> {
    return refine(unwrap(await api.GET('/api/evaluations/{evaluation_id}', byId(id))))
  },
  async create(body: EvaluationCreate): Promise<Evaluation> {
    return refine(unwrap(await api.POST('/api/evaluations', { body })))
  },
  async update(id: number, body: EvaluationUpdate): Promise<Evaluation> {
    return refine(unwrap(await api.PATCH('/api/evaluations/{evaluation_id}', { ...byId(id), body })))
  },
  /** Draft → queued; failed, cancelled or stopped runs resume where they stopped. */
  async start(id: number): Promise<Evaluation> {
    return refine(unwrap(await api.POST('/api/evaluations/{evaluation_id}/start', byId(id))))
  },
  async cancel(id: number): Promise<Evaluation> {
    return refine(unwrap(await api.POST('/api/evaluations/{evaluation_id}/cancel', byId(id))))
  },
  async remove(id: number): Promise<void> {
    unwrap(await api.DELETE('/api/evaluations/{evaluation_id}', byId(id)))
  },
  async samples(id: number, query: SampleQuery = {}): Promise<SamplePage> {
    const params = { path: { evaluation_id: id }, query }
    return unwrap(await api.GET('/api/evaluations/{evaluation_id}/samples', { params }))
  },
  async compare(runs: number[], baseline?: number): Promise<Comparison> {
    return unwrap(await api.POST('/api/evaluations/compare', { body: { runs, baseline: baseline ?? null } }))
  },
  /** The URL of one evaluation's report (what the download button fetches). */
  reportUrl(id: number, format: ReportFormat): string {
    return withQuery(`${base}/${id}/report`, { format })
  },
  compareReportUrl(runs: number[], format: ReportFormat, baseline?: number): string {
    return withQuery(`${base}/compare/report`, { runs: runs.join(','), baseline, format })
  },
  downloadReport(id: number, format: ReportFormat): Promise<void> {
    return downloadFile(evaluationsApi.reportUrl(id, format), `evaluation-${id}.${format}`)
  },
  downloadCompareReport(runs: number[], format: ReportFormat, baseline?: number): Promise<void> {
    return downloadFile(
      evaluationsApi.compareReportUrl(runs, format, baseline),
      `comparison-${runs.join('-')}.${format}`,
    )
  },
}
