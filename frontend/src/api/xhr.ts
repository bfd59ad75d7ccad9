/**
 * XMLHttpRequest with upload progress, which fetch() cannot report. Same rules as `authFetch`:
 * the bearer token is attached, and a 401 triggers one shared refresh and one replay.
 * Failures become ApiErrors (status 0 for a network failure, AbortError when aborted).
 */
import { toApiError } from './errors'
import { authSession } from './http'

export interface XhrRequest {
  method: 'POST' | 'PUT'
  url: string
  body: Blob | FormData
  headers?: Record<string, string>
  onProgress?: (loaded: number) => void
  signal: AbortSignal
}

interface RawResponse {
  status: number
  body: unknown
}

function parse(text: string): unknown {
  if (text === '') return null
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

function sendOnce(req: XhrRequest, token: string | null): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    if (req.signal.aborted) {
      reject(new DOMException('Aborted', 'AbortError'))
      return
    }
    const xhr = new XMLHttpRequest()
    xhr.open(req.method, req.url)
    xhr.withCredentials = true
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`)
    for (const [name, value] of Object.entries(req.headers ?? {})) xhr.setRequestHeader(name, value)
    xhr.upload.onprogress = (event) => req.onProgress?.(event.loaded)
    const onAbort = () => xhr.abort()
    req.signal.addEventListener('abort', onAbort, { once: true })
    xhr.onload = () => {
      req.signal.removeEventListener('abort', onAbort)
      resolve({ status: xhr.status, body: parse(xhr.responseText) })
    }
    xhr.onerror = () => {
      req.signal.removeEventListener('abort', onAbort)
      reject(toApiError(0, 'Network error'))
    }
    xhr.onabort = () => {
      req.signal.removeEventListener('abort', onAbort)
      reject(new DOMException('Aborted', 'AbortError'))
    }
    xhr.send(req.body)
  })
}

/** Send with progress; resolve the parsed JSON body of a 2xx answer, else throw an ApiError. */
export async function sendWithProgress<T>(req: XhrRequest): Promise<T> {
  const sent = authSession.token()
  let response = await sendOnce(req, sent)
  if (response.status === 401) {
    const current = authSession.token()
    const refreshed = current !== null && current !== sent ? true : await authSession.refresh()
    if (!refreshed) {
      authSession.fail()
    } else {
      response = await sendOnce(req, authSession.token())
      if (response.status === 401) authSession.fail()
    }
  }
  if (response.status < 200 || response.status >= 300) throw toApiError(response.status, response.body)
  return response.body as T
}
