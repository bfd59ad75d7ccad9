import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { ApiError } from '@/api/errors'
import { downloadFile, setAuthHooks } from '@/api/http'
import { REVOKE_AFTER_MS, filenameOf, saveBlob, saveResponse, saveText } from '@/lib/download'

/** What the browser was handed: the link's name and the blob behind its object URL. */
interface Saved {
  filename: string
  blob: Blob
  href: string
}

let saved: Saved[]
let revoked: string[]
let blobs: Map<string, Blob>

beforeEach(() => {
  saved = []
  revoked = []
  blobs = new Map()
  let next = 0
  vi.spyOn(URL, 'createObjectURL').mockImplementation((blob) => {
    const url = `blob:test/${++next}`
    blobs.set(url, blob as Blob)
    return url
  })
  vi.spyOn(URL, 'revokeObjectURL').mockImplementation((url) => {
    revoked.push(url)
  })
  vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
    // The link must be in the document when clicked (Firefox ignores detached links).
    expect(document.body.contains(this)).toBe(true)
    saved.push({ filename: this.download, blob: blobs.get(this.href)!, href: this.href })
  })
})

afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

describe('filenameOf', () => {
  it('reads the plain and the RFC 5987 forms of Content-Disposition', () => {
    expect(filenameOf('attachment; filename="chats.jsonl"')).toBe('chats.jsonl')
    expect(filenameOf('attachment; filename=plain.txt')).toBe('plain.txt')
    expect(filenameOf("attachment; filename*=utf-8''%E6%95%B0%E6%8D%AE.jsonl")).toBe('数据.jsonl')
    // filename* wins over filename when both are there
    expect(filenameOf('attachment; filename="fallback.bin"; filename*=UTF-8\'\'real%20name.bin')).toBe('real name.bin')
  })

  it('gives null when there is no usable name', () => {
    expect(filenameOf(null)).toBeNull()
    expect(filenameOf('')).toBeNull()
    expect(filenameOf('inline')).toBeNull()
  })
})

describe('saving files', () => {
  it('clicks a temporary link, removes it, and revokes the object URL later', () => {
    vi.useFakeTimers()
    saveBlob(new Blob(['abc']), 'a.txt')
    expect(saved).toHaveLength(1)
    expect(saved[0]!.filename).toBe('a.txt')
    expect(document.querySelectorAll('a')).toHaveLength(0)
    expect(revoked).toEqual([])
    vi.advanceTimersByTime(REVOKE_AFTER_MS)
    expect(revoked).toEqual([saved[0]!.href])
  })

  it('saves a text with its type', async () => {
    saveText('kind: yaml\n', 'job.yaml', 'text/yaml')
    expect(saved[0]!.filename).toBe('job.yaml')
    expect(saved[0]!.blob.type).toBe('text/yaml')
    expect(await saved[0]!.blob.text()).toBe('kind: yaml\n')
  })

  it('names a response after its Content-Disposition, else the fallback', async () => {
    const named = new Response('1', { headers: { 'Content-Disposition': 'attachment; filename="server.tar.gz"' } })
    await saveResponse(named, 'fallback.tar.gz')
    await saveResponse(new Response('2'), 'fallback.tar.gz')
    expect(saved.map((s) => s.filename)).toEqual(['server.tar.gz', 'fallback.tar.gz'])
    expect(await saved[1]!.blob.text()).toBe('2')
  })
})

describe('downloadFile (api/http)', () => {
  it('fetches with the access token and saves the body', async () => {
    setAuthHooks({ getToken: () => 'tok', refresh: async () => false, onAuthFailure: () => {} })
    const seen: Request[] = []
    vi.stubGlobal(
      'fetch',
      vi.fn(async (request: Request) => {
        seen.push(request)
        return new Response('weights', { headers: { 'Content-Disposition': 'attachment; filename="m-v1.tar.gz"' } })
      }),
    )
    await downloadFile('http://localhost/api/models/versions/3/download', 'model.tar.gz')
    expect(seen[0]!.headers.get('Authorization')).toBe('Bearer tok')
    expect(saved.map((s) => s.filename)).toEqual(['m-v1.tar.gz'])
    expect(await saved[0]!.blob.text()).toBe('weights')
  })

  it('throws the server error and saves nothing when the answer is not 2xx', async () => {
    setAuthHooks({ getToken: () => 'tok', refresh: async () => false, onAuthFailure: () => {} })
    const body = { error: { code: 'not_found', message: 'No such checkpoint', details: [] } }
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response(JSON.stringify(body), { status: 404 })),
    )
    const failure = downloadFile('http://localhost/api/jobs/1/checkpoints/x/archive', 'x.tar.gz')
    await expect(failure).rejects.toBeInstanceOf(ApiError)
    await expect(failure).rejects.toMatchObject({ status: 404, code: 'not_found' })
    expect(saved).toEqual([])
  })
})
