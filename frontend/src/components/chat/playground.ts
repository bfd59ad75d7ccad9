/**
 * The playground's columns: one per model, filled from the merged SSE stream where every event
 * names its column by `index`. Kept apart from the view so the merge is testable.
 */
import type { PlaygroundResult, PlaygroundRun, PlaygroundStreamEvent } from '@/api/chat'

export const MAX_MODELS = 3

export interface Column {
  model: string
  content: string
  reasoning: string
  prompt_tokens: number | null
  completion_tokens: number | null
  latency_ms: number | null
  ttft_ms: number | null
  error: string | null
  pending: boolean
}

export function newColumn(model: string): Column {
  return {
    model,
    content: '',
    reasoning: '',
    prompt_tokens: null,
    completion_tokens: null,
    latency_ms: null,
    ttft_ms: null,
    error: null,
    pending: true,
  }
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

/** Columns of a saved run (the history's "reopen"). */
export function columnsOf(run: Pick<PlaygroundRun, 'results'>): Column[] {
  return run.results.map((r: Partial<PlaygroundResult>) => ({
    model: r.model ?? '',
    content: r.content ?? '',
    reasoning: r.reasoning_content ?? '',
    prompt_tokens: num(r.prompt_tokens),
    completion_tokens: num(r.completion_tokens),
    latency_ms: num(r.latency_ms),
    ttft_ms: num(r.ttft_ms),
    error: r.error ? (r.error.message ?? r.error.code ?? 'error') : null,
    pending: false,
  }))
}

/**
 * Apply one stream event to the columns. Returns the run id for `done`, the message of an error
 * that belongs to no column (the whole request failed), otherwise nothing.
 */
export function applyPlaygroundEvent(
  columns: Column[],
  event: PlaygroundStreamEvent,
): { runId?: number | null; error?: string } | undefined {
  switch (event.type) {
    case 'delta': {
      const column = columns[event.index]
      if (!column) return undefined
      column.content += event.content
      column.reasoning += event.reasoning
      return undefined
    }
    case 'result': {
      const column = columns[event.index]
      if (!column) return undefined
      const r = event.result
      // The final text is authoritative when the server sends it (deltas may have been cut).
      if (typeof r.content === 'string' && r.content.length >= column.content.length) column.content = r.content
      if (typeof r.reasoning_content === 'string' && r.reasoning_content.length >= column.reasoning.length) {
        column.reasoning = r.reasoning_content
      }
      column.prompt_tokens = num(r.prompt_tokens)
      column.completion_tokens = num(r.completion_tokens)
      column.latency_ms = num(r.latency_ms)
      column.ttft_ms = num(r.ttft_ms)
      if (r.error) column.error = r.error.message ?? r.error.code ?? 'error'
      column.pending = false
      return undefined
    }
    case 'error': {
      const column = event.index === null ? undefined : columns[event.index]
      if (!column) return { error: event.message }
      column.error = event.message
      column.pending = false
      return undefined
    }
    case 'done':
      for (const column of columns) column.pending = false
      return { runId: event.runId }
  }
}
