import { describe, expect, it, vi } from 'vitest'

import { ApiError } from '@/api/errors'
import {
  buildPushPayload,
  canPush,
  emptyPushForm,
  externalUrl,
  placePushError,
  repoIdProblem,
} from '@/components/models/pushForm'
import ModelDetailView from '@/views/models/ModelDetailView.vue'

import {
  MODEL,
  VERSION,
  byTestId,
  cleanUpAfterEach,
  fakeServer,
  json,
  mountView,
  settle,
  typeInto,
  type Seen,
} from './harness'

vi.setConfig({ testTimeout: 30_000 })
cleanUpAfterEach()

describe('repository id', () => {
  it('takes owner/name as the hubs do', () => {
    for (const ok of [
      'alice/tiny',
      'Org-1/my_model.v2',
      'a_b/c_d',
      'a/b',
      ' alice/tiny ',
      `${'o'.repeat(96)}/${'n'.repeat(96)}`,
    ]) {
      expect(repoIdProblem(ok), ok).toBeNull()
    }
  })

  it('says what is wrong with one it refuses', () => {
    expect(repoIdProblem('')).toBe('required')
    expect(repoIdProblem('   ')).toBe('required')
    expect(repoIdProblem('tiny')).toBe('shape')
    expect(repoIdProblem('alice/')).toBe('shape')
    expect(repoIdProblem('/tiny')).toBe('shape')
    expect(repoIdProblem('alice/team/tiny')).toBe('shape')
    expect(repoIdProblem('alice/my model')).toBe('chars')
    expect(repoIdProblem('alice/tiny!')).toBe('chars')
    expect(repoIdProblem('alice/模型')).toBe('chars')
    expect(repoIdProblem(`alice/${'n'.repeat(97)}`)).toBe('tooLong')
    expect(repoIdProblem(`${'o'.repeat(97)}/tiny`)).toBe('tooLong')
    expect(repoIdProblem('alice/-tiny')).toBe('edges')
    expect(repoIdProblem('alice/tiny.')).toBe('edges')
    expect(repoIdProblem('.alice/tiny')).toBe('edges')
    expect(repoIdProblem('alice/_tiny')).toBe('edges')
    expect(repoIdProblem('alice/ti--ny')).toBe('repeats')
    expect(repoIdProblem('alice/ti..ny')).toBe('repeats')
  })
})

describe('push request', () => {
  it('is private by default and sends the id and token trimmed', () => {
    const form = emptyPushForm()
    expect(form).toEqual({ hub: 'huggingface', repoId: '', token: '', private: true })
    expect(canPush(form)).toBe(false)
    Object.assign(form, { hub: 'modelscope', repoId: ' alice/tiny ', token: 'ms-secret\n' })
    expect(canPush(form)).toBe(true)
    expect(buildPushPayload(form)).toEqual({
      hub: 'modelscope',
      repo_id: 'alice/tiny',
      token: 'ms-secret',
      private: true,
    })
    expect(buildPushPayload({ ...form, private: false }).private).toBe(false)
    expect(canPush({ ...form, token: '  ' })).toBe(false)
    expect(canPush({ ...form, repoId: 'tiny' })).toBe(false)
  })

  it('links only to http(s)', () => {
    expect(externalUrl('https://huggingface.co/alice/tiny')).toBe('https://huggingface.co/alice/tiny')
    expect(externalUrl('javascript:alert(1)')).toBeNull()
    expect(externalUrl(null)).toBeNull()
  })
})

describe('push errors', () => {
  it('puts 422 details on the fields they name', () => {
    const err = new ApiError(422, 'invalid_input', 'bad', [
      { field: 'body.repo_id', message: 'repo_id must be owner/name' },
      { field: 'token', message: 'token is empty' },
    ])
    expect(placePushError(err)).toEqual({
      code: 'invalid_input',
      fields: { repo_id: 'repo_id must be owner/name', token: 'token is empty' },
      general: null,
    })
  })

  it('puts a rejected token on the token, named or not', () => {
    const named = new ApiError(422, 'hub_auth_failed', 'Invalid token', [{ field: 'token', message: 'Invalid token' }])
    expect(placePushError(named)).toMatchObject({ fields: { token: 'Invalid token' }, general: null })
    const bare = new ApiError(422, 'hub_auth_failed', '401 Unauthorized')
    expect(placePushError(bare)).toEqual({
      code: 'hub_auth_failed',
      fields: { token: '401 Unauthorized' },
      general: null,
    })
  })

  it('shows a missing or unreachable hub above the form', () => {
    const missing = new ApiError(409, 'hub_unavailable', 'modelscope is not installed (pip install modelscope)')
    expect(placePushError(missing)).toEqual({
      code: 'hub_unavailable',
      fields: {},
      general: 'modelscope is not installed (pip install modelscope)',
    })
    expect(placePushError(new ApiError(502, 'hub_unreachable', 'timed out')).general).toBe('timed out')
  })
})

// ----- the dialog on the model page, against a fake server -----

const RESULT = {
  url: 'https://huggingface.co/alice/tiny',
  commit_url: 'https://huggingface.co/alice/tiny/commit/abc123',
  revision: 'abc123',
  hub: 'huggingface',
  repo_id: 'alice/tiny',
  private: true,
  files: 3,
}

function pushServer(push: (body: unknown) => Response) {
  return fakeServer((req) => {
    if (req.path === '/api/models/5') return json(200, MODEL)
    if (req.path === '/api/models/5/versions') return json(200, { items: [VERSION] })
    if (req.path === '/api/models/versions/21/scores') return json(200, { items: [] })
    if (req.method === 'POST' && req.path === '/api/models/versions/21/push') return push(req.body)
    return undefined
  })
}

const pushes = (seen: Seen[]) => seen.filter((r) => r.path.endsWith('/push'))
/** el-input puts the test id on the <input> itself. */
const input = (id: string) => {
  const host = byTestId(id)!
  return (host.tagName === 'INPUT' ? host : host.querySelector('input')) as HTMLInputElement
}

async function openDialog(): Promise<void> {
  await mountView(ModelDetailView, '/models/5')
  ;(byTestId('version-push-1') as HTMLElement).click()
  await settle()
}

describe('push dialog', () => {
  it('refuses a bad repository id without sending, then pushes and links to the repository', async () => {
    const seen = pushServer(() => json(200, RESULT))
    await openDialog()
    expect(byTestId('push-dialog')).not.toBeNull()
    expect(input('push-token').type).toBe('password')
    expect((byTestId('push-private') as HTMLElement).className).toContain('is-checked')
    expect(byTestId('push-token-note')?.textContent).toContain('not saved')

    typeInto('push-repo-id', 'tiny')
    typeInto('push-token', 'hf_secret')
    ;(byTestId('push-submit') as HTMLElement).click()
    await settle()
    expect(pushes(seen)).toHaveLength(0)
    expect(byTestId('push-dialog')!.textContent).toContain('exactly one slash')

    typeInto('push-repo-id', 'alice/tiny')
    ;(byTestId('push-submit') as HTMLElement).click()
    await settle()
    expect(pushes(seen)).toHaveLength(1)
    expect(pushes(seen)[0]!.body).toEqual({
      hub: 'huggingface',
      repo_id: 'alice/tiny',
      token: 'hf_secret',
      private: true,
    })
    const link = byTestId('push-repo-link') as HTMLAnchorElement
    expect(link.getAttribute('href')).toBe('https://huggingface.co/alice/tiny')
    expect(link.getAttribute('target')).toBe('_blank')
    expect(link.getAttribute('rel')).toBe('noopener noreferrer')
    expect(byTestId('push-files')?.textContent).toBe('3 files')
    // The token is nowhere to be found afterwards.
    expect(JSON.stringify(localStorage)).not.toContain('hf_secret')
    expect(JSON.stringify(sessionStorage)).not.toContain('hf_secret')
  })

  it('shows a rejected token on the token field and a missing hub above the form', async () => {
    let answer = json(422, {
      error: { code: 'hub_auth_failed', message: 'Invalid credentials', details: [{ field: 'token', message: 'x' }] },
    })
    const seen = pushServer(() => answer)
    await openDialog()
    ;(byTestId('push-hub-modelscope')!.querySelector('input') as HTMLInputElement).click()
    typeInto('push-repo-id', 'alice/tiny')
    typeInto('push-token', 'bad')
    ;(byTestId('push-submit') as HTMLElement).click()
    await settle()
    expect((pushes(seen)[0]!.body as { hub: string }).hub).toBe('modelscope')
    const tokenItem = byTestId('push-token')!.closest('.el-form-item')!
    expect(tokenItem.querySelector('.el-form-item__error')?.textContent).toContain('refused this token')

    answer = json(409, {
      error: { code: 'hub_unavailable', message: 'modelscope is not installed on this server', details: [] },
    })
    ;(byTestId('push-submit') as HTMLElement).click()
    await settle()
    expect(byTestId('push-error')?.textContent).toContain('modelscope is not installed on this server')
  })

  it("shows the server's repository error on the repository field, until it is edited", async () => {
    pushServer(() =>
      json(422, {
        error: {
          code: 'invalid_input',
          message: 'Invalid input',
          details: [{ field: 'body.repo_id', message: 'alice/tiny belongs to another owner' }],
        },
      }),
    )
    await openDialog()
    typeInto('push-repo-id', 'alice/tiny')
    typeInto('push-token', 'hf_secret')
    ;(byTestId('push-submit') as HTMLElement).click()
    await settle()
    const repoItem = byTestId('push-repo-id')!.closest('.el-form-item')!
    expect(repoItem.querySelector('.el-form-item__error')?.textContent).toContain('belongs to another owner')
    expect(byTestId('push-error')).toBeNull()
    typeInto('push-repo-id', 'alice/tiny2')
    await settle()
    expect(repoItem.querySelector('.el-form-item__error')).toBeNull()
  })

  it('is offered only to those who can change the model', async () => {
    fakeServer((req) => {
      if (req.path === '/api/models/5') return json(200, { ...MODEL, can_edit: false })
      if (req.path === '/api/models/5/versions') return json(200, { items: [VERSION] })
      if (req.path === '/api/models/versions/21/scores') return json(200, { items: [] })
      return undefined
    })
    await mountView(ModelDetailView, '/models/5')
    expect(byTestId('version-row-1')).not.toBeNull()
    expect(byTestId('version-push-1')).toBeNull()
  })

  it('clears the token when the dialog closes', async () => {
    pushServer(() => json(200, RESULT))
    await openDialog()
    typeInto('push-token', 'hf_secret')
    await settle()
    expect(input('push-token').value).toBe('hf_secret')
    ;(byTestId('push-dialog')!.closest('.el-overlay')!.querySelector('.el-dialog__headerbtn') as HTMLElement).click()
    await settle()
    ;(byTestId('version-push-1') as HTMLElement).click()
    await settle()
    expect(input('push-token').value).toBe('')
  })
})
