/**
 * The parameter panel's values and what is sent: empty fields are left out so the model's own
 * defaults apply; stop sequences are typed one per line.
 */
import type { ChatParams } from '@/api/chat'

/** The panel's state: numbers or null (= default), stop sequences as text. */
export interface ParamsForm {
  temperature: number | null
  top_p: number | null
  max_tokens: number | null
  stop: string
  seed: number | null
  presence_penalty: number | null
  frequency_penalty: number | null
}

export function emptyParams(): ParamsForm {
  return {
    temperature: null,
    top_p: null,
    max_tokens: null,
    stop: '',
    seed: null,
    presence_penalty: null,
    frequency_penalty: null,
  }
}

const NUMERIC = ['temperature', 'top_p', 'max_tokens', 'seed', 'presence_penalty', 'frequency_penalty'] as const

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

/** The request's `params`: only what the user set. */
export function toParams(form: ParamsForm): ChatParams {
  const out: ChatParams = {}
  for (const key of NUMERIC) {
    const value = form[key]
    if (isNumber(value)) out[key] = value
  }
  const stop = form.stop
    .split('\n')
    .map((s) => s.replace(/\r$/, ''))
    .filter((s) => s.length > 0)
  if (stop.length > 0) out.stop = stop.slice(0, 4)
  return out
}

/** The panel's state from stored params (a conversation's). */
export function fromParams(params: ChatParams | null | undefined): ParamsForm {
  const form = emptyParams()
  if (!params) return form
  for (const key of NUMERIC) {
    const value = params[key]
    if (isNumber(value)) form[key] = value
  }
  if (Array.isArray(params.stop)) form.stop = params.stop.join('\n')
  else if (typeof params.stop === 'string') form.stop = params.stop
  return form
}

/** `{{name}}` placeholders of a prompt template, in order of first use. */
export function templateVariables(content: string): string[] {
  const seen: string[] = []
  for (const match of content.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) {
    const name = match[1]!
    if (!seen.includes(name)) seen.push(name)
  }
  return seen
}

/** Tokens, latency and time to first token of an answer, as one short line. */
export function statsLine(
  stats: {
    prompt_tokens?: number | null
    completion_tokens?: number | null
    latency_ms?: number | null
    ttft_ms?: number | null
  },
  labels: { tokens: string; latency: string; ttft: string },
): string {
  const parts: string[] = []
  if (isNumber(stats.prompt_tokens) || isNumber(stats.completion_tokens)) {
    parts.push(`${labels.tokens} ${stats.prompt_tokens ?? '?'}→${stats.completion_tokens ?? '?'}`)
  }
  if (isNumber(stats.latency_ms)) parts.push(`${labels.latency} ${formatMs(stats.latency_ms)}`)
  if (isNumber(stats.ttft_ms)) parts.push(`${labels.ttft} ${formatMs(stats.ttft_ms)}`)
  return parts.join(' · ')
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`
}
