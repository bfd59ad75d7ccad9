import { describe, expect, it } from 'vitest'
import { defineComponent, nextTick, ref } from 'vue'

import type { SpecSchema } from '@/api/jobs'
import { useSpecForm } from '@/components/jobs/form/useSpecForm'

import { mount } from './mount'

const SCHEMA: SpecSchema = {
  schema: {
    properties: {
      precision: { type: 'string', enum: ['auto', 'bf16', 'fp16', 'fp32'], default: 'auto' },
      devices: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'integer' } }], default: 'auto' },
    },
  },
  groups: { common: ['precision', 'devices'], advanced: [], hidden: [] },
} as unknown as SpecSchema

describe('a CPU run in the job form', () => {
  it('never keeps bf16 or fp16 once the CPU is chosen', async () => {
    let form: ReturnType<typeof useSpecForm> | undefined
    const Host = defineComponent({
      setup() {
        form = useSpecForm(ref(SCHEMA))
        return () => null
      },
    })
    const mounted = mount(Host, {})
    const values = form!.values
    values.precision = 'bf16'
    values.devices = 'auto'
    await nextTick()
    expect(values.precision).toBe('bf16') // a GPU may well run bf16
    values.devices = 'cpu'
    await nextTick()
    expect(values.precision).toBe('fp32')
    values.precision = 'fp16'
    await nextTick()
    expect(values.precision).toBe('fp32')
    mounted.unmount()
  })
})
