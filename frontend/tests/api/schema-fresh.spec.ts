/**
 * The client's types must not drift from the server:
 *  1. src/api/schema.d.ts is exactly what `npm run gen:api` makes from openapi.json;
 *  2. openapi.json is what the server currently publishes (checked when the Python
 *     environment exists, as it does in the test script; a frontend-only checkout skips it).
 * Refresh both with: npm run dump:openapi && npm run gen:api
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { describe, expect, it } from 'vitest'

const root = resolve(__dirname, '..', '..')
const loraforge = resolve(root, '..', '.venv', 'bin', 'loraforge')
const HOW_TO_FIX = 'run `npm run dump:openapi && npm run gen:api` in frontend/'

describe('generated API schema', () => {
  it('schema.d.ts matches openapi.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'loraforge-schema-'))
    try {
      const out = join(dir, 'schema.d.ts')
      const cli = join(root, 'node_modules', 'openapi-typescript', 'bin', 'cli.js')
      execFileSync(process.execPath, [cli, join(root, 'openapi.json'), '-o', out], { stdio: 'pipe' })
      const committed = readFileSync(join(root, 'src', 'api', 'schema.d.ts'), 'utf8')
      const fresh = readFileSync(out, 'utf8')
      expect(committed === fresh, `schema.d.ts is stale: ${HOW_TO_FIX}`).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)

  it.skipIf(!existsSync(loraforge))(
    'openapi.json matches the server',
    () => {
      const served: unknown = JSON.parse(execFileSync(loraforge, ['openapi'], { encoding: 'utf8', stdio: 'pipe' }))
      const committed: unknown = JSON.parse(readFileSync(join(root, 'openapi.json'), 'utf8'))
      expect(committed, `openapi.json is stale: ${HOW_TO_FIX}`).toEqual(served)
    },
    60_000,
  )
})
