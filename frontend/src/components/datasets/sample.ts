/**
 * How a dataset row is shown. Rows come back normalized by the server, but the shape differs
 * by format (chat messages, alpaca fields, preference pairs, plain text, multiple-choice questions),
 * so the preview picks a layout from what the row contains.
 */

export interface Turn {
  role: string
  content: string
}

export type SampleView =
  | { kind: 'chat'; turns: Turn[]; label?: boolean | null }
  | { kind: 'preference'; prompt: Turn[]; chosen: Turn[]; rejected: Turn[] }
  | { kind: 'text'; text: string }
  | { kind: 'fields'; fields: [string, string][] }
  | { kind: 'choice'; question: string; options: string[]; answer: string; subject: string | null }

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function asText(value: unknown): string {
  if (typeof value === 'string') return value
  if (value === null || value === undefined) return ''
  if (Array.isArray(value)) {
    // OpenAI content parts: [{type: 'text', text: '…'}]
    const parts = value.map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : asText(part)))
    return parts.join('\n')
  }
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

const SHAREGPT_ROLES: Record<string, string> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  system: 'system',
  function_call: 'tool',
  observation: 'tool',
  tool: 'tool',
}

/** [{role, content}] or ShareGPT's [{from, value}] → turns; anything else → null. */
export function toTurns(value: unknown): Turn[] | null {
  if (typeof value === 'string') return [{ role: 'assistant', content: value }]
  if (isRecord(value) && ('role' in value || 'from' in value)) value = [value]
  if (!Array.isArray(value)) return null
  const turns: Turn[] = []
  for (const item of value) {
    if (!isRecord(item)) return null
    const rawRole = item.role ?? item.from
    if (typeof rawRole !== 'string') return null
    turns.push({ role: SHAREGPT_ROLES[rawRole] ?? rawRole, content: asText(item.content ?? item.value) })
  }
  return turns
}

/** The row's payload: the server may wrap it ({row, data}) or return it bare. */
export function unwrapRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const key of ['normalized', 'data', 'sample', 'record']) {
    const inner = row[key]
    if (isRecord(inner)) return inner
  }
  return row
}

/**
 * The layout for one row. `format` is the dataset's: the normalized form of a preference pair
 * keeps [chosen, rejected] in `response`, which only the format tells apart from a chat.
 */
export function sampleView(raw: unknown, format?: string): SampleView {
  if (!isRecord(raw)) return { kind: 'text', text: asText(raw) }
  const row = unwrapRow(raw)
  // A multiple-choice version keeps the question itself beside its prompt/response rendering.
  const choice = row.choice
  if (isRecord(choice) && typeof choice.question === 'string' && Array.isArray(choice.options)) {
    return {
      kind: 'choice',
      question: choice.question,
      options: choice.options.map(asText),
      answer: asText(choice.answer),
      subject: typeof choice.subject === 'string' && choice.subject ? choice.subject : null,
    }
  }
  // The server's normalized form: {index, row, prompt: [turns], response: [turns], system, tools, label}.
  if (Array.isArray(row.prompt) && Array.isArray(row.response)) {
    const system: Turn[] = typeof row.system === 'string' && row.system ? [{ role: 'system', content: row.system }] : []
    const prompt = [...system, ...(toTurns(row.prompt) ?? [])]
    const response = row.response as unknown[]
    if (format === 'preference' && response.length === 2) {
      return { kind: 'preference', prompt, chosen: toTurns(response[0]) ?? [], rejected: toTurns(response[1]) ?? [] }
    }
    if (format === 'text' && response.length === 0 && prompt.length === 1)
      return { kind: 'text', text: prompt[0]!.content }
    const label = typeof row.label === 'boolean' ? row.label : null
    return { kind: 'chat', turns: [...prompt, ...(toTurns(response) ?? [])], label }
  }
  const conversation = toTurns(row.messages ?? row.conversations ?? row.conversation)
  const chosen = 'chosen' in row ? toTurns(row.chosen) : null
  const rejected = 'rejected' in row ? toTurns(row.rejected) : null
  if (chosen && rejected) {
    const prompt =
      conversation ??
      (row.prompt !== undefined ? (toTurns(row.prompt) ?? [{ role: 'user', content: asText(row.prompt) }]) : [])
    return { kind: 'preference', prompt, chosen, rejected }
  }
  if (conversation) {
    const label = typeof row.label === 'boolean' ? row.label : typeof row.kto_tag === 'boolean' ? row.kto_tag : null
    return { kind: 'chat', turns: conversation, label }
  }
  if (typeof row.instruction === 'string' || typeof row.output === 'string') {
    const turns: Turn[] = []
    if (typeof row.system === 'string' && row.system) turns.push({ role: 'system', content: row.system })
    const prompt = [asText(row.instruction), asText(row.input)].filter((s) => s.length > 0).join('\n\n')
    turns.push({ role: 'user', content: prompt })
    if (row.output !== undefined) turns.push({ role: 'assistant', content: asText(row.output) })
    return { kind: 'chat', turns }
  }
  if (
    typeof row.text === 'string' &&
    Object.keys(row).filter((k) => !['row', 'index', 'id'].includes(k)).length === 1
  ) {
    return { kind: 'text', text: row.text }
  }
  const fields = Object.entries(row)
    .filter(([key]) => !['row', 'index', 'line'].includes(key))
    .map(([key, value]): [string, string] => [key, asText(value)])
  return { kind: 'fields', fields }
}

/** The row number to show (1-based): the server's if it sends one. */
export function rowNumber(raw: unknown, fallback: number): number {
  if (isRecord(raw)) {
    for (const key of ['row', 'index', 'line']) {
      const value = raw[key]
      if (typeof value === 'number' && Number.isFinite(value)) return value
    }
  }
  return fallback
}
