import { describe, expect, it } from 'vitest'

import { evaluationOf, isCloneable, jobStage } from '@/lib/jobStage'

describe('jobStage', () => {
  it('tells training, merge and evaluation jobs apart', () => {
    expect(jobStage({ spec: { stage: 'sft' } })).toBe('train')
    expect(jobStage({ spec: null })).toBe('train')
    expect(jobStage({ spec: { stage: 'merge' } })).toBe('merge')
    expect(jobStage({ spec: { stage: 'export' } })).toBe('export')
    expect(jobStage({ spec: { stage: 'evaluation', evaluation_id: 3 } })).toBe('evaluation')
  })

  it('clones only training jobs into the form', () => {
    expect(isCloneable({ spec: { stage: 'dpo' } })).toBe(true)
    expect(isCloneable({ spec: { stage: 'merge' } })).toBe(false)
    expect(isCloneable({ spec: { stage: 'export' } })).toBe(false)
    expect(isCloneable({ spec: { stage: 'evaluation' } })).toBe(false)
  })

  it('finds the evaluation of an evaluation job', () => {
    expect(evaluationOf({ spec: { stage: 'evaluation', evaluation_id: 7 } })).toBe(7)
    expect(evaluationOf({ spec: { stage: 'evaluation', evaluation_id: '7' } })).toBeNull()
    expect(evaluationOf({ spec: { stage: 'sft', evaluation_id: 7 } })).toBeNull()
  })
})
