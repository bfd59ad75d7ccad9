import { describe, expect, it, vi } from 'vitest'

import TrainDemoButton from '@/components/jobs/TrainDemoButton.vue'

import { byTestId, cleanUpAfterEach, click, fakeServer, flush, json, mountView } from '../models/harness'

cleanUpAfterEach()

describe('TrainDemoButton', () => {
  it('queues the demo with one POST and opens the job it made', async () => {
    const seen = fakeServer((req) =>
      req.method === 'POST' && req.path === '/api/jobs/demo'
        ? json(201, { id: 42, name: 'demo: learn who I am', status: 'queued' })
        : undefined,
    )
    const { router } = await mountView(TrainDemoButton)
    expect(byTestId('train-demo')?.textContent).toContain('Train the demo')
    click('train-demo')
    await flush()
    expect(seen.filter((r) => r.path === '/api/jobs/demo')).toHaveLength(1)
    await vi.waitFor(() => expect(router.currentRoute.value.fullPath).toBe('/jobs/42'))
  })

  it('stays put and says why when the server refuses', async () => {
    fakeServer(() => json(422, { error: { code: 'invalid_spec', message: 'no demo today', details: [] } }))
    const { router } = await mountView(TrainDemoButton)
    click('train-demo')
    await flush()
    expect(router.currentRoute.value.fullPath).toBe('/')
    expect(document.body.textContent).toContain('no demo today')
  })
})
