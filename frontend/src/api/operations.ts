/**
 * Nodes and the operator dashboard: the machines that run jobs (their readings, history, drain and
 * undrain), the operations summary, and moving a running job to another node. The live socket's
 * frames (`WS /ws/operations`) carry these same shapes; they are not in the OpenAPI document.
 */
import { api, unwrap } from './client'
import type { components } from './schema'

type Schemas = components['schemas']
export type DrainMode = 'finish' | 'now'
export type NodeView = Schemas['NodePublic']
export type NodeDetail = Schemas['NodeDetail']
export type NodeList = Schemas['NodeList']
export type NodeGpuInfo = Schemas['NodeGpu']
export type NodeGpuReading = Schemas['GpuReadingNow']
export type NodeLatest = Schemas['NodeReading']
export type NodeJob = Schemas['NodeJob']
export type NodeHistoryPoint = Schemas['HistoryPoint']
export type OpsSummary = Schemas['OperationsSummary']
/** What a migrate answers: the job row (its status and where it goes next). */
export type MigratedJob = Schemas['JobPublic']

export const operationsApi = {
  async nodes(): Promise<NodeList> {
    return unwrap(await api.GET('/api/nodes'))
  },
  async node(id: number, hours: number): Promise<NodeDetail> {
    return unwrap(await api.GET('/api/nodes/{node_id}', { params: { path: { node_id: id }, query: { hours } } }))
  },
  async summary(): Promise<OpsSummary> {
    return unwrap(await api.GET('/api/operations/summary'))
  },
  async drain(id: number, mode: DrainMode): Promise<NodeView> {
    return unwrap(await api.POST('/api/nodes/{node_id}/drain', { params: { path: { node_id: id } }, body: { mode } }))
  },
  async undrain(id: number): Promise<NodeView> {
    return unwrap(await api.POST('/api/nodes/{node_id}/undrain', { params: { path: { node_id: id } } }))
  },
  /** Stop a running job at a checkpoint and resume it on another node. */
  async migrate(jobId: number): Promise<MigratedJob> {
    return unwrap(await api.POST('/api/jobs/{job_id}/migrate', { params: { path: { job_id: jobId } } }))
  },
}
