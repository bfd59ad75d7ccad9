/**
 * Where the new-job form starts from, read from its URL:
 * `?clone=<job>` (that job's spec), `?template=<id>`, `?preset=<id>`, and
 * `?fromJob=<job>&patch=suggested` (a failed job's spec with the engine's suggested fix applied);
 * `?dataset=<id>&version=<version id>` (a dataset page's "Use for training") picks the data, alone
 * or over any of those.
 */
import { jobsApi, suggestedPatch, type JobSpec } from '@/api/jobs'
import { templatesApi } from '@/api/templates'

export interface Prefill {
  spec: JobSpec
  name: string
  /** What the form came from, for the notice above it. */
  source: { kind: 'clone' | 'template' | 'preset' | 'fix'; label: string } | null
  /** The keys the suggested fix changed (kind "fix"). */
  patched: string[]
}

export const EMPTY_PREFILL: Prefill = { spec: {}, name: '', source: null, patched: [] }

type Query = Record<string, unknown>

/** RFC 7386 on a flat spec (what the engine's suggested fixes are): keys replace, null removes. */
export function mergePatch(spec: JobSpec, patch: JobSpec): JobSpec {
  const out: JobSpec = { ...spec }
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key]
    else out[key] = value
  }
  return out
}

function one(query: Query, key: string): string | null {
  const raw = query[key]
  const value = Array.isArray(raw) ? raw[0] : raw
  return typeof value === 'string' && value.length > 0 ? value : null
}

function idOf(query: Query, key: string): number | null {
  const text = one(query, key)
  return text !== null && /^\d+$/.test(text) ? Number(text) : null
}

/** The api calls prefill needs (tests pass fakes). */
export interface PrefillApi {
  getJob: typeof jobsApi.get
  getTemplate: typeof templatesApi.get
  presets: typeof templatesApi.presets
}

const realApi: PrefillApi = {
  getJob: (id) => jobsApi.get(id),
  getTemplate: (id) => templatesApi.get(id),
  presets: () => templatesApi.presets(),
}

export async function prefillFrom(query: Query, deps: PrefillApi = realApi): Promise<Prefill> {
  return withData(await fromSource(query, deps), query)
}

/** The dataset (and version) the URL names, over the spec; a dataset without a version: its current one. */
function withData(prefill: Prefill, query: Query): Prefill {
  const dataset = idOf(query, 'dataset')
  if (dataset === null) return prefill
  const spec: JobSpec = { ...prefill.spec, dataset }
  const version = idOf(query, 'version')
  if (version !== null) spec.dataset_version = version
  else delete spec.dataset_version
  return { ...prefill, spec }
}

async function fromSource(query: Query, deps: PrefillApi): Promise<Prefill> {
  const fromJob = idOf(query, 'fromJob')
  if (fromJob !== null) {
    const job = await deps.getJob(fromJob)
    const patch = one(query, 'patch') === 'suggested' ? suggestedPatch(job) : null
    return {
      spec: mergePatch(job.spec, patch ?? {}),
      name: `${job.name}-fix`,
      source: { kind: 'fix', label: job.name },
      patched: patch ? Object.keys(patch) : [],
    }
  }
  const clone = idOf(query, 'clone')
  if (clone !== null) {
    const job = await deps.getJob(clone)
    return { spec: { ...job.spec }, name: `${job.name}-copy`, source: { kind: 'clone', label: job.name }, patched: [] }
  }
  const template = idOf(query, 'template')
  if (template !== null) {
    const tpl = await deps.getTemplate(template)
    return { spec: { ...tpl.spec }, name: tpl.name, source: { kind: 'template', label: tpl.name }, patched: [] }
  }
  const presetId = one(query, 'preset')
  if (presetId !== null) {
    const preset = (await deps.presets()).find((p) => p.id === presetId)
    if (preset) {
      return { spec: { ...preset.spec }, name: preset.id, source: { kind: 'preset', label: preset.id }, patched: [] }
    }
  }
  return { ...EMPTY_PREFILL }
}
