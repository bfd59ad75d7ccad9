/**
 * The Export dialog's logic, apart from its template (so a spec checks it without mounting):
 * which formats a version may be exported to and why the others are greyed out, which quantization
 * is picked when the format changes, and where a running export stands from its job's events.
 */
import {
  EXPORT_FORMATS,
  type ExportFormat,
  type ExportVerification,
  type FormatOption,
  type QuantizationOption,
} from '@/api/exports'

/** Why a choice cannot be made: a message key under `exports.unavailable`, or the server's reason. */
export type Reason = { key: string } | { text: string }

export interface FormatChoice {
  format: ExportFormat
  disabled: boolean
  reason: Reason | null
  quantizations: QuantizationOption[]
}

/** Formats in the dialog's order; those the server does not list are shown unavailable. */
export function formatChoices(options: readonly FormatOption[], weights: string): FormatChoice[] {
  return EXPORT_FORMATS.map((format) => {
    const option = options.find((o) => o.name === format)
    if (!option) return { format, disabled: true, reason: { key: 'notOffered' }, quantizations: [] }
    if (option.needs_adapter && weights !== 'adapter') {
      return { format, disabled: true, reason: { key: 'adapterOnly' }, quantizations: option.quantizations }
    }
    if (!option.available) {
      const reason: Reason = option.reason ? { text: option.reason } : { key: 'notOffered' }
      return { format, disabled: true, reason, quantizations: option.quantizations }
    }
    return { format, disabled: false, reason: null, quantizations: option.quantizations }
  })
}

/** The format the dialog opens on: GGUF when it can be chosen, else the first that can. */
export function defaultFormat(choices: readonly FormatChoice[]): ExportFormat | null {
  const open = choices.filter((c) => !c.disabled)
  return (open.find((c) => c.format === 'gguf') ?? open[0])?.format ?? null
}

/** Q8_0 is lossless enough to verify as identical on small models and a quarter of F32's size. */
const PREFERRED = ['q8_0', 'int4', 'f16']

/**
 * The quantization after a format change: the current one when the new format offers it too,
 * else the server's default, else a preferred one, else the first available; null when the format
 * has none (merged weights).
 */
export function pickQuantization(option: FormatOption | undefined, current: string | null): string | null {
  const available = (option?.quantizations ?? []).filter((q) => q.available).map((q) => q.name)
  if (available.length === 0) return null
  if (current && available.includes(current)) return current
  const server = option?.default_quantization
  if (server && available.includes(server)) return server
  return PREFERRED.find((q) => available.includes(q)) ?? available[0] ?? null
}

/** Whether the choice can be submitted: an open format, and a quantization when it has any. */
export function canExport(choices: readonly FormatChoice[], format: ExportFormat | null, quant: string | null) {
  const choice = choices.find((c) => c.format === format)
  if (!choice || choice.disabled) return false
  const open = choice.quantizations.filter((q) => q.available)
  return open.length === 0 || (quant !== null && open.some((q) => q.name === quant))
}

// ----- a running export, from its job's events -----

/** exporting → verifying: the engine's status events; queued/starting before the first of them. */
export interface ExportProgress {
  phase: string
  step: number | null
  total: number | null
  eta_s: number | null
  error: { code: string; message: string } | null
}

export const EMPTY_PROGRESS: ExportProgress = { phase: 'queued', step: null, total: null, eta_s: null, error: null }

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)

/** Fold the job's events (in order) into where the export stands. */
export function foldExportEvents(
  state: ExportProgress,
  events: readonly { type: string; [key: string]: unknown }[],
): ExportProgress {
  let next = state
  for (const event of events) {
    if (event.type === 'status' && typeof event.status === 'string') next = { ...next, phase: event.status }
    else if (event.type === 'metric' || event.type === 'progress') {
      next = {
        ...next,
        step: num(event.step) ?? next.step,
        total: num(event.total_steps) ?? next.total,
        eta_s: num(event.eta_s),
      }
    } else if (event.type === 'error') {
      next = { ...next, error: { code: String(event.code ?? 'error'), message: String(event.message ?? '') } }
    }
  }
  return next
}

/** 0–100 for the progress bar: tensors written of all, else the job's own progress. */
export function percentOf(progress: ExportProgress, jobProgress: number | null | undefined): number {
  if (progress.phase === 'verifying' || progress.phase === 'succeeded') return 100
  if (progress.step !== null && progress.total) return Math.min(100, Math.round((progress.step / progress.total) * 100))
  return typeof jobProgress === 'number' ? Math.min(100, Math.round(jobProgress * 100)) : 0
}

// ----- the verification as the version shows it -----

export type VerificationTone = 'success' | 'warning' | 'error' | 'info'

/**
 * Identical → success; loaded and generated but with some tokens different → warning; failed →
 * error; nothing read back at all (verification skipped: no reader) → info.
 */
export function verificationTone(v: Pick<ExportVerification, 'ok' | 'identical' | 'reader'>): VerificationTone {
  if (!v.ok) return v.reader ? 'error' : 'info'
  return v.identical ? 'success' : 'warning'
}

/** 0.8125 → "81.3 %"-ready number (one decimal), null when the report has none. */
export function agreementPercent(v: Pick<ExportVerification, 'agreement'>): number | null {
  return typeof v.agreement === 'number' && Number.isFinite(v.agreement) ? Math.round(v.agreement * 1000) / 10 : null
}
