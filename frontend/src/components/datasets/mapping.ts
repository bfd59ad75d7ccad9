/**
 * Column mapping: which of a file's columns plays which role for a format, as the
 * `dataset_info.json`-style entry the server takes (`{formatting, ranking, columns, tags}`), and a
 * preview of the first rows under it. The preview follows the engine's row converter
 * (engine/data/formats.py) so that what the dialog shows is what the new version will hold; the
 * server still validates every row when the mapping is saved.
 */
import type { DatasetFormat } from '@/api/datasets'

/** Where the prompt of a preference or KTO row lives: separate columns, or a list of messages. */
export type Shape = 'columns' | 'conversation'

export type ColumnRole =
  'prompt' | 'query' | 'response' | 'history' | 'system' | 'chosen' | 'rejected' | 'kto_tag' | 'messages' | 'text'

export type TagRole = 'role_tag' | 'content_tag' | 'user_tag' | 'assistant_tag' | 'system_tag'
export const TAG_ROLES: readonly TagRole[] = ['role_tag', 'content_tag', 'user_tag', 'assistant_tag', 'system_tag']

export interface MappingForm {
  format: DatasetFormat
  shape: Shape
  /** Role → column name; '' leaves the role unmapped. */
  columns: Partial<Record<ColumnRole, string>>
  tags: Record<TagRole, string>
}

/** The server's `DatasetMapping`. */
export interface DatasetMapping {
  formatting: 'alpaca' | 'sharegpt' | 'openai' | 'text'
  ranking: boolean
  columns: Record<string, string>
  tags: Record<string, string>
}

export interface RoleSpec {
  role: ColumnRole
  required: boolean
}

const SHAREGPT_TAGS: Record<TagRole, string> = {
  role_tag: 'from',
  content_tag: 'value',
  user_tag: 'human',
  assistant_tag: 'gpt',
  system_tag: 'system',
}
const OPENAI_TAGS: Record<TagRole, string> = {
  role_tag: 'role',
  content_tag: 'content',
  user_tag: 'user',
  assistant_tag: 'assistant',
  system_tag: 'system',
}
// Tool turns keep the engine's defaults (not offered in the form): they count as user/assistant turns.
const TOOL_TAGS = {
  sharegpt: { observation: 'observation', function: 'function_call' },
  openai: { observation: 'tool', function: 'function_call' },
}

/** The shapes a format can take: preference and KTO rows come both ways. */
export function shapesFor(format: DatasetFormat): Shape[] {
  if (format === 'preference' || format === 'kto') return ['columns', 'conversation']
  return format === 'sharegpt' || format === 'messages' ? ['conversation'] : ['columns']
}

/** The roles the form asks for, in display order. */
export function rolesFor(format: DatasetFormat, shape: Shape): RoleSpec[] {
  const need = (role: ColumnRole): RoleSpec => ({ role, required: true })
  const may = (role: ColumnRole): RoleSpec => ({ role, required: false })
  if (format === 'text') return [need('text')]
  const extra: RoleSpec[] =
    format === 'preference' ? [need('chosen'), need('rejected')] : format === 'kto' ? [need('kto_tag')] : []
  if (shape === 'conversation') return [need('messages'), ...extra, may('system')]
  const answer: RoleSpec[] = format === 'preference' ? [] : [need('response')]
  const history: RoleSpec[] = format === 'alpaca' ? [may('history')] : []
  return [need('prompt'), may('query'), ...answer, ...extra, may('system'), ...history]
}

function formattingOf(form: MappingForm): DatasetMapping['formatting'] {
  if (form.format === 'text') return 'text'
  if (form.shape === 'columns') return 'alpaca'
  return form.format === 'sharegpt' ? 'sharegpt' : 'openai'
}

export function defaultTags(format: DatasetFormat, columns: readonly string[] = []): Record<TagRole, string> {
  // A file with ShareGPT's `conversations` key most likely also has its from/value tags.
  const sharegpt = format === 'sharegpt' || (format !== 'messages' && columns.includes('conversations'))
  return { ...(sharegpt ? SHAREGPT_TAGS : OPENAI_TAGS) }
}

/** The column a role falls back to when the file has it (LLaMA-Factory's defaults and common names). */
const GUESSES: Record<ColumnRole, readonly string[]> = {
  prompt: ['instruction', 'prompt', 'question'],
  query: ['input'],
  response: ['output', 'response', 'completion', 'answer'],
  history: ['history'],
  system: ['system'],
  chosen: ['chosen'],
  rejected: ['rejected'],
  kto_tag: ['label', 'kto_tag'],
  messages: ['messages', 'conversations', 'conversation'],
  text: ['text', 'content'],
}

function guessColumn(role: ColumnRole, columns: readonly string[]): string {
  return GUESSES[role].find((c) => columns.includes(c)) ?? ''
}

/**
 * The form for `format`: the roles of the version's current mapping first, then a guess from the
 * file's column names for the roles still empty.
 */
export function initialForm(
  format: DatasetFormat,
  current: Partial<DatasetMapping> | null | undefined,
  columns: readonly string[],
): MappingForm {
  const shapes = shapesFor(format)
  const conversational = ['messages', 'conversations', 'conversation'].some((c) => columns.includes(c))
  const shape: Shape = shapes.length === 1 ? shapes[0]! : conversational ? 'conversation' : 'columns'
  const form: MappingForm = { format, shape, columns: {}, tags: defaultTags(format, columns) }
  const known = current?.columns ?? {}
  for (const { role } of rolesFor(format, shape)) {
    const fromMapping = role === 'text' ? known.prompt : known[role]
    form.columns[role] = fromMapping && columns.includes(fromMapping) ? fromMapping : guessColumn(role, columns)
  }
  if (shape === 'conversation' && current?.tags) {
    for (const tag of TAG_ROLES) if (current.tags[tag]) form.tags[tag] = current.tags[tag]
  }
  return form
}

/** The form after a change of shape: the roles that still apply keep their column, new ones are guessed. */
export function withShape(form: MappingForm, columns: readonly string[]): MappingForm {
  const next: MappingForm = { ...form, columns: {} }
  for (const { role } of rolesFor(form.format, form.shape)) {
    next.columns[role] = form.columns[role] || guessColumn(role, columns)
  }
  return next
}

/** Required roles without a column. */
export function missingRoles(form: MappingForm): ColumnRole[] {
  return rolesFor(form.format, form.shape)
    .filter(({ role, required }) => required && !form.columns[role])
    .map(({ role }) => role)
}

/** The entry sent to the server. */
export function buildMapping(form: MappingForm): DatasetMapping {
  const columns: Record<string, string> = {}
  for (const { role } of rolesFor(form.format, form.shape)) {
    const column = form.columns[role]
    if (column) columns[role === 'text' ? 'prompt' : role] = column
  }
  const tags: Record<string, string> = {}
  if (form.shape === 'conversation') {
    for (const tag of TAG_ROLES) if (form.tags[tag]) tags[tag] = form.tags[tag]
  }
  return { formatting: formattingOf(form), ranking: form.format === 'preference', columns, tags }
}

// ----- preview: one raw row under the mapping, in the server's normalized shape -----

export interface Turn {
  role: string
  content: string
}

export interface Example {
  prompt: Turn[]
  response: Turn[]
  system: string
  tools: string
  label: boolean | null
}

export type Converted = { ok: true; example: Example } | { ok: false; field: string; message: string }

class RowProblem extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message)
  }
}

function text(row: Record<string, unknown>, column: string | undefined, required = false): string {
  if (!column) return ''
  const value = row[column]
  if (value === null || value === undefined) {
    if (required) throw new RowProblem(column, 'missing')
    return ''
  }
  return typeof value === 'object' ? JSON.stringify(value) : String(value)
}

function ktoLabel(row: Record<string, unknown>, form: MappingForm): boolean | null {
  const column = form.format === 'kto' ? form.columns.kto_tag : undefined
  if (!column) return null
  const value = row[column]
  if (typeof value === 'boolean') return value
  if (typeof value === 'string' && ['true', 'false'].includes(value.toLowerCase()))
    return value.toLowerCase() === 'true'
  throw new RowProblem(column, `KTO label must be true/false, got ${JSON.stringify(value) ?? 'nothing'}`)
}

function fromColumns(row: Record<string, unknown>, form: MappingForm): Example {
  const c = form.columns
  const content = [text(row, c.prompt, true), text(row, c.query)].filter((part) => part).join('\n')
  if (!content.trim()) throw new RowProblem(c.prompt ?? 'prompt', 'empty prompt')
  const prompt: Turn[] = []
  const history = c.history ? row[c.history] : undefined
  if (history) {
    if (!Array.isArray(history)) throw new RowProblem(c.history!, 'must be a list of [query, answer] pairs')
    history.forEach((pair: unknown, i) => {
      if (!Array.isArray(pair) || pair.length !== 2) throw new RowProblem(`${c.history}[${i}]`, 'must be a pair')
      prompt.push({ role: 'user', content: String(pair[0]) }, { role: 'assistant', content: String(pair[1]) })
    })
  }
  prompt.push({ role: 'user', content })
  const label = ktoLabel(row, form)
  let response: Turn[]
  if (form.format === 'preference') {
    response = [
      { role: 'assistant', content: text(row, c.chosen, true) },
      { role: 'assistant', content: text(row, c.rejected, true) },
    ]
  } else {
    let answer = c.response ? row[c.response] : undefined
    if (Array.isArray(answer)) answer = answer[0]
    response =
      answer === undefined || answer === null || answer === '' ? [] : [{ role: 'assistant', content: String(answer) }]
  }
  return { prompt, response, system: text(row, c.system), tools: '', label }
}

function ranked(row: Record<string, unknown>, column: string | undefined, contentTag: string): Turn {
  const value = column ? row[column] : undefined
  const name = column ?? 'chosen'
  if (typeof value === 'string' && value) return { role: 'assistant', content: value }
  const last = Array.isArray(value) ? value[value.length - 1] : value
  if (last && typeof last === 'object' && contentTag in last) {
    return { role: 'assistant', content: String((last as Record<string, unknown>)[contentTag]) }
  }
  throw new RowProblem(name, 'missing preference answer')
}

function fromConversation(row: Record<string, unknown>, form: MappingForm): Example {
  const column = form.columns.messages ?? 'messages'
  const messages = row[column]
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new RowProblem(column, 'missing or not a non-empty list of messages')
  }
  const tags = form.tags
  const tools = TOOL_TAGS[formattingOf(form) === 'sharegpt' ? 'sharegpt' : 'openai']
  const userRoles = [tags.user_tag, tools.observation]
  const assistantRoles = [tags.assistant_tag, tools.function]
  let system = text(row, form.columns.system)
  let start = 0
  const first = messages[0] as Record<string, unknown> | null
  if (first && typeof first === 'object' && first[tags.role_tag] === tags.system_tag) {
    system = String(first[tags.content_tag] ?? '')
    start = 1
  }
  const turns: Turn[] = []
  for (let i = start; i < messages.length; i++) {
    const message = messages[i] as unknown
    if (!message || typeof message !== 'object') throw new RowProblem(`${column}[${i}]`, 'must be an object')
    const fields = message as Record<string, unknown>
    const role = fields[tags.role_tag]
    const expectUser = (i - start) % 2 === 0
    const allowed = expectUser ? userRoles : assistantRoles
    if (typeof role !== 'string' || !allowed.includes(role)) {
      const kind = expectUser ? 'user' : 'assistant'
      throw new RowProblem(
        `${column}[${i}].${tags.role_tag}`,
        `expected a ${kind} turn (${allowed.join(' or ')}), got ${JSON.stringify(role) ?? 'nothing'}`,
      )
    }
    const content = fields[tags.content_tag]
    if (content === undefined || content === null)
      throw new RowProblem(`${column}[${i}].${tags.content_tag}`, 'missing')
    turns.push({
      role: expectUser ? 'user' : 'assistant',
      content: typeof content === 'string' ? content : JSON.stringify(content),
    })
  }
  const label = ktoLabel(row, form)
  if (form.format === 'preference') {
    if (turns.length % 2 !== 1) throw new RowProblem(column, 'a preference example must end with a user turn')
    const response = [
      ranked(row, form.columns.chosen, tags.content_tag),
      ranked(row, form.columns.rejected, tags.content_tag),
    ]
    return { prompt: turns, response, system, tools: '', label }
  }
  if (turns.length < 2 || turns.length % 2 !== 0) {
    throw new RowProblem(column, `needs user/assistant pairs ending with an assistant turn, got ${turns.length} turns`)
  }
  return { prompt: turns.slice(0, -1), response: turns.slice(-1), system, tools: '', label }
}

/** One raw row under the mapping: the example the server would store, or why the row is invalid. */
export function convertRow(row: Record<string, unknown>, form: MappingForm): Converted {
  try {
    if (form.format === 'text') {
      const body = text(row, form.columns.text, true)
      if (!body.trim()) throw new RowProblem(form.columns.text ?? 'text', 'empty text')
      return {
        ok: true,
        example: { prompt: [{ role: 'user', content: body }], response: [], system: '', tools: '', label: null },
      }
    }
    const example = form.shape === 'conversation' ? fromConversation(row, form) : fromColumns(row, form)
    return { ok: true, example }
  } catch (err) {
    if (err instanceof RowProblem) return { ok: false, field: err.field, message: err.message }
    throw err
  }
}
