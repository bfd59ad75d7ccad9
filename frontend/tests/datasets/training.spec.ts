import { describe, expect, it } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'

import { estimateView, trainingRoute } from '@/components/datasets/versions'
import { routes } from '@/router'

describe('use for training', () => {
  it('opens the job form with the dataset and its current version as query ids', () => {
    const router = createRouter({ history: createMemoryHistory(), routes })
    const resolved = router.resolve(trainingRoute({ id: 7, current_version_id: 12 }))
    expect(resolved.name).toBe('job-new')
    expect(resolved.fullPath).toBe('/jobs/new?dataset=7&version=12')
    expect(resolved.query).toEqual({ dataset: '7', version: '12' })
    // Without a current version the form picks one itself: no empty `version` key.
    expect(router.resolve(trainingRoute({ id: 7, current_version_id: null })).fullPath).toBe('/jobs/new?dataset=7')
  })
})

describe('dry-run estimate', () => {
  it('says whether every row was counted or the counts were scaled up', () => {
    const estimate = { rows_in: 999, rows_out: 932, removed: { duplicate_exact: 67 }, sample_rows: 999 }
    expect(estimateView({ estimate: { ...estimate, extrapolated: false } })).toEqual({
      rowsIn: 999,
      sampleRows: 999,
      extrapolated: false,
    })
    expect(estimateView({ estimate: { ...estimate, sample_rows: 200, extrapolated: true } })).toMatchObject({
      sampleRows: 200,
      extrapolated: true,
    })
    expect(estimateView({ estimate: null })).toBeNull()
  })
})
