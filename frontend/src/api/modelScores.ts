/**
 * A model version's evaluation scores (`GET /api/models/versions/{version_id}/scores`): each evaluation
 * the version took part in, its totals, and the delta against the base model scored in the same
 * evaluation (api/schemas/evaluations.py).
 */
import { requestJson } from './http'
import type { components } from './schema'

type Schemas = components['schemas']

export type ModelScore = Schemas['VersionScore']
export type ScoreBase = Schemas['ScoreBase']

export const modelScoresApi = {
  async list(versionId: number): Promise<ModelScore[]> {
    const page = await requestJson<Schemas['VersionScores']>('GET', `/api/models/versions/${versionId}/scores`)
    return page.items
  },
}
