/**
 * The server answers every 4xx/5xx with one shape:
 *   {"error": {"code": "<snake_case>", "message": "<text>", "details": [{"field", "message"}]}}
 * These helpers turn that (or anything else a proxy might return) into an ApiError, and map
 * field paths such as `body.username` onto the names of a form's fields.
 */

export interface ErrorDetail {
  field?: string | null
  message: string
}

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly details: ErrorDetail[]

  constructor(status: number, code: string, message: string, details: ErrorDetail[] = []) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.details = details
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function toDetail(raw: unknown): ErrorDetail | null {
  if (!isRecord(raw)) return null
  const message = typeof raw.message === 'string' ? raw.message : typeof raw.msg === 'string' ? raw.msg : null
  if (message === null) return null
  let field: string | null = null
  if (typeof raw.field === 'string') field = raw.field
  // Tolerate FastAPI's native `loc` list in case a route bypasses the error handler.
  else if (Array.isArray(raw.loc)) field = raw.loc.map(String).join('.')
  return { field, message }
}

/** Build an ApiError from an HTTP status and a parsed (or unparsable) response body. */
export function toApiError(status: number, body: unknown): ApiError {
  if (isRecord(body) && isRecord(body.error)) {
    const err = body.error
    const code = typeof err.code === 'string' ? err.code : `http_${status}`
    const message = typeof err.message === 'string' ? err.message : `HTTP ${status}`
    const details = Array.isArray(err.details)
      ? err.details.map(toDetail).filter((d): d is ErrorDetail => d !== null)
      : []
    return new ApiError(status, code, message, details)
  }
  const text = typeof body === 'string' && body.length > 0 && body.length < 300 ? body : `HTTP ${status}`
  return new ApiError(status, status === 0 ? 'network_error' : `http_${status}`, text)
}

/** Any thrown value → ApiError (a network failure becomes status 0). */
export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new ApiError(0, 'network_error', message)
}

const LOCATION_PREFIXES = new Set(['body', 'query', 'path', 'header', 'cookie'])

/**
 * Map an error detail's field path to one of the form's field names, or null.
 * `body.username` → `username`; `body.new_password` → `new_password`; `body` alone → null.
 * `fieldAliases` lets a form show a server field under a differently named input
 * (e.g. the login form shows `username` errors on `username_or_email`).
 */
export function mapFieldPath(
  path: string | null | undefined,
  formFields: readonly string[],
  fieldAliases: Readonly<Record<string, string>> = {},
): string | null {
  if (!path) return null
  const parts = path.split('.').filter((p) => p.length > 0)
  if (parts.length > 0 && LOCATION_PREFIXES.has(parts[0]!)) parts.shift()
  // Try the longest dotted suffix first, then each segment, so nested paths still land.
  for (let i = 0; i < parts.length; i++) {
    const candidate = parts.slice(i).join('.')
    const name = fieldAliases[candidate] ?? candidate
    if (formFields.includes(name)) return name
  }
  for (const part of parts) {
    const name = fieldAliases[part] ?? part
    if (formFields.includes(name)) return name
  }
  return null
}

export interface SplitErrors {
  /** Messages keyed by form field, ready for `<el-form-item :error>`. */
  fields: Record<string, string>
  /** What could not be placed on a field: shown above the form. Null when all were placed. */
  general: string | null
}

/** Split an error into per-field messages and a general message for the form. */
export function splitFormErrors(
  err: ApiError,
  formFields: readonly string[],
  fieldAliases: Readonly<Record<string, string>> = {},
): SplitErrors {
  const fields: Record<string, string> = {}
  const unplaced: string[] = []
  for (const detail of err.details) {
    const name = mapFieldPath(detail.field, formFields, fieldAliases)
    if (name === null) unplaced.push(detail.message)
    else if (fields[name] === undefined) fields[name] = detail.message
    else fields[name] = `${fields[name]}; ${detail.message}`
  }
  const placedSomething = Object.keys(fields).length > 0
  let general: string | null = null
  if (unplaced.length > 0) general = unplaced.join('; ')
  else if (!placedSomething) general = err.message
  return { fields, general }
}
