/**
 * The Push dialog's logic, apart from its template (so a spec checks it without mounting): checking
 * a repository id the way the hubs accept one, building the request, and placing an error of the
 * push route on the dialog's fields.
 */
import { splitFormErrors, type ApiError } from '@/api/errors'
import type { PushHub, PushRequest } from '@/api/exports'

export const PUSH_HUBS: readonly PushHub[] = ['huggingface', 'modelscope']

/** The fields of the dialog, named as the request names them (the server's `details[].field`). */
export const PUSH_FIELDS = ['hub', 'repo_id', 'token', 'private'] as const
export type PushField = (typeof PUSH_FIELDS)[number]

export interface PushForm {
  hub: PushHub
  repoId: string
  token: string
  private: boolean
}

/** A fresh form: private by default, so nothing becomes public by accident. */
export const emptyPushForm = (): PushForm => ({ hub: 'huggingface', repoId: '', token: '', private: true })

/** The Hub's limit on each of `owner` and `name` (huggingface_hub's validate_repo_id). */
export const REPO_PART_MAX = 96
const PART_CHARS = /^[A-Za-z0-9_.-]+$/
/** A letter or digit at both ends, as the server's check (engine/export/hub_push.py) wants. */
const PART_EDGES = /^[A-Za-z0-9](?:.*[A-Za-z0-9])?$/

/** Why a repository id is refused: a message key under `exports.push.repoErrors`. */
export type RepoIdProblem = 'required' | 'shape' | 'chars' | 'edges' | 'repeats' | 'tooLong'

/**
 * What is wrong with a repository id, or null when the hubs would take it: `owner/name`, exactly one
 * slash, each part letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit, with no
 * `--` or `..` (the Hub refuses those), at most 96 characters each. Surrounding spaces are ignored.
 */
export function repoIdProblem(value: string): RepoIdProblem | null {
  const id = value.trim()
  if (id === '') return 'required'
  const parts = id.split('/')
  if (parts.length !== 2 || parts.some((p) => p === '')) return 'shape'
  if (parts.some((p) => !PART_CHARS.test(p))) return 'chars'
  if (parts.some((p) => p.length > REPO_PART_MAX)) return 'tooLong'
  if (parts.some((p) => !PART_EDGES.test(p))) return 'edges'
  if (id.includes('--') || id.includes('..')) return 'repeats'
  return null
}

/** Whether the form can be sent: a valid repository id and a token. */
export function canPush(form: PushForm): boolean {
  return repoIdProblem(form.repoId) === null && form.token.trim() !== ''
}

/** The request body: the id and token trimmed (a pasted token often carries a newline). */
export function buildPushPayload(form: PushForm): PushRequest {
  return { hub: form.hub, repo_id: form.repoId.trim(), token: form.token.trim(), private: form.private }
}

export interface PushErrorPlacement {
  code: string
  /** The server's messages by field (a rejected token lands on `token`). */
  fields: Partial<Record<PushField, string>>
  /** What belongs to no field (hub not installed or unreachable, …): shown above the form. */
  general: string | null
}

/**
 * Place an error of the push route: 422 details on the fields they name; `hub_auth_failed` on the
 * token even when the server names no field; anything else (409 hub_unavailable, 502
 * hub_unreachable, 404) above the form with the server's message.
 */
export function placePushError(err: ApiError): PushErrorPlacement {
  const split = splitFormErrors(err, PUSH_FIELDS)
  const fields: Partial<Record<PushField, string>> = split.fields
  if (err.code === 'hub_auth_failed' && fields.token === undefined) {
    fields.token = err.message
    return { code: err.code, fields, general: null }
  }
  return { code: err.code, fields, general: split.general }
}

/** A link from the server, only when it is http(s) (a `javascript:` URL never becomes a link). */
export function externalUrl(url: string | null | undefined): string | null {
  return typeof url === 'string' && /^https?:\/\//i.test(url) ? url : null
}
