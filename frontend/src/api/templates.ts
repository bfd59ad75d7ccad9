/**
 * Job templates (own and shared specs saved for reuse) and the shipped presets, plus the
 * YAML import that turns a spec file into a template-shaped spec.
 */
import { api, unwrap } from './client'
import type { components } from './schema'

type Schemas = components['schemas']
export type Template = Schemas['TemplatePublic']
export type TemplatePage = Schemas['TemplatePage']
export type TemplateInput = Schemas['TemplateCreate']
export type TemplateScope = 'all' | 'mine' | 'shared'
export type Preset = Schemas['PresetPublic']
export type PresetMethod = Preset['method']
export type ParsedSpec = Schemas['ParsedSpecPublic']

export const templatesApi = {
  async list(scope: TemplateScope = 'all', page = 1, pageSize = 100): Promise<TemplatePage> {
    return unwrap(await api.GET('/api/templates', { params: { query: { scope, page, page_size: pageSize } } }))
  },
  async get(id: number): Promise<Template> {
    return unwrap(await api.GET('/api/templates/{template_id}', { params: { path: { template_id: id } } }))
  },
  async create(body: TemplateInput): Promise<Template> {
    return unwrap(await api.POST('/api/templates', { body }))
  },
  async remove(id: number): Promise<void> {
    unwrap(await api.DELETE('/api/templates/{template_id}', { params: { path: { template_id: id } } }))
  },
  async presets(): Promise<Preset[]> {
    return unwrap(await api.GET('/api/templates/presets')).items
  },
  /** Parse a YAML spec (ours or a LLaMA-Factory training YAML) without saving anything. */
  async parseYaml(yaml: string): Promise<ParsedSpec> {
    return unwrap(await api.POST('/api/templates/parse', { body: { yaml } }))
  },
}
