/** The host the server runs on (CPUs, memory, GPUs, disk), as the dashboard shows it. */
import { api, unwrap } from './client'
import type { components } from './schema'

export type HostInfo = components['schemas']['HostInfo']
export type GpuReading = components['schemas']['GpuReading']

export const systemApi = {
  async host(): Promise<HostInfo> {
    return unwrap(await api.GET('/api/system/host'))
  },
}
