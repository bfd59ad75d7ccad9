import { describe, expect, it } from 'vitest'

import { ApiError, asApiError, mapFieldPath, splitFormErrors, toApiError } from '@/api/errors'

describe('toApiError', () => {
  it('reads the server error shape', () => {
    const err = toApiError(422, {
      error: {
        code: 'validation_error',
        message: 'Invalid input',
        details: [{ field: 'body.username', message: 'too short' }],
      },
    })
    expect(err).toBeInstanceOf(ApiError)
    expect(err.status).toBe(422)
    expect(err.code).toBe('validation_error')
    expect(err.message).toBe('Invalid input')
    expect(err.details).toEqual([{ field: 'body.username', message: 'too short' }])
  })

  it('tolerates FastAPI loc lists and drops malformed details', () => {
    const err = toApiError(422, {
      error: { code: 'validation_error', message: 'x', details: [{ loc: ['body', 'email'], msg: 'bad' }, 42, {}] },
    })
    expect(err.details).toEqual([{ field: 'body.email', message: 'bad' }])
  })

  it('falls back for bodies that are not the error shape', () => {
    expect(toApiError(502, '<html>Bad gateway</html>').code).toBe('http_502')
    expect(toApiError(500, undefined).message).toBe('HTTP 500')
    expect(toApiError(404, { detail: 'Not Found' }).code).toBe('http_404')
  })

  it('wraps thrown values', () => {
    const original = new ApiError(409, 'conflict', 'taken')
    expect(asApiError(original)).toBe(original)
    const wrapped = asApiError(new TypeError('Failed to fetch'))
    expect(wrapped.status).toBe(0)
    expect(wrapped.code).toBe('network_error')
    expect(wrapped.message).toBe('Failed to fetch')
  })
})

describe('mapFieldPath', () => {
  const fields = ['username', 'email', 'password'] as const

  it('strips the location prefix', () => {
    expect(mapFieldPath('body.username', fields)).toBe('username')
    expect(mapFieldPath('query.email', fields)).toBe('email')
    expect(mapFieldPath('password', fields)).toBe('password')
  })

  it('returns null for paths that name no field', () => {
    expect(mapFieldPath('body', fields)).toBeNull()
    expect(mapFieldPath('body.unknown', fields)).toBeNull()
    expect(mapFieldPath(null, fields)).toBeNull()
    expect(mapFieldPath('', fields)).toBeNull()
  })

  it('finds nested fields and honours aliases', () => {
    expect(mapFieldPath('body.profile.email', fields)).toBe('email')
    expect(mapFieldPath('body.username', ['username_or_email'], { username: 'username_or_email' })).toBe(
      'username_or_email',
    )
  })
})

describe('splitFormErrors', () => {
  it('puts field errors on fields and the rest in general', () => {
    const err = new ApiError(422, 'validation_error', 'Invalid input', [
      { field: 'body.username', message: 'taken' },
      { field: 'body.username', message: 'too short' },
      { field: 'body', message: 'body is malformed' },
    ])
    expect(splitFormErrors(err, ['username', 'email'])).toEqual({
      fields: { username: 'taken; too short' },
      general: 'body is malformed',
    })
  })

  it('uses the message when no detail lands on a field', () => {
    const err = new ApiError(401, 'invalid_credentials', 'Wrong username or password')
    expect(splitFormErrors(err, ['username_or_email', 'password'])).toEqual({
      fields: {},
      general: 'Wrong username or password',
    })
  })

  it('leaves general empty when every detail was placed', () => {
    const err = new ApiError(409, 'conflict', 'Already exists', [{ field: 'body.email', message: 'in use' }])
    expect(splitFormErrors(err, ['email'])).toEqual({ fields: { email: 'in use' }, general: null })
  })
})
