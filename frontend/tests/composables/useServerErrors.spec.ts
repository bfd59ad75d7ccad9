import { describe, expect, it } from 'vitest'
import { createApp } from 'vue'

import { ApiError } from '@/api/errors'
import { useServerErrors } from '@/composables/useServerErrors'
import { i18n } from '@/i18n'

/** Run the composable inside a component (useI18n needs one) and hand it back. */
function setup(fields: readonly ('username' | 'email' | 'password')[]) {
  let result: ReturnType<typeof useServerErrors<'username' | 'email' | 'password'>> | undefined
  const app = createApp({
    setup() {
      result = useServerErrors(fields)
      return () => null
    },
  })
  app.use(i18n).mount(document.createElement('div'))
  return result!
}

describe('useServerErrors', () => {
  it('places field errors and keeps the general message empty', () => {
    i18n.global.locale.value = 'en'
    const server = setup(['username', 'email', 'password'])
    server.apply(
      new ApiError(422, 'validation_error', 'invalid input', [
        { field: 'body.password', message: 'String should have at least 8 characters' },
        { field: 'body.email', message: 'not a valid email' },
      ]),
    )
    expect(server.fields).toEqual({
      password: 'String should have at least 8 characters',
      email: 'not a valid email',
    })
    expect(server.general.value).toBeNull()
  })

  it('translates a known code for the whole-form message', () => {
    i18n.global.locale.value = 'zh-CN'
    const server = setup(['username', 'password'])
    server.apply(new ApiError(401, 'invalid_credentials', 'wrong username/email or password'))
    expect(server.general.value).toBe('用户名/邮箱或密码错误。')
    i18n.global.locale.value = 'en'
  })

  it('translates a single coded field error and keeps unknown codes verbatim', () => {
    i18n.global.locale.value = 'en'
    const server = setup(['username', 'email'])
    server.apply(
      new ApiError(409, 'username_taken', 'this username is taken', [
        { field: 'body.username', message: 'this username is taken' },
      ]),
    )
    expect(server.fields.username).toBe('This username is taken.')
    server.apply(new ApiError(418, 'teapot', 'I am a teapot'))
    expect(server.fields).toEqual({})
    expect(server.general.value).toBe('I am a teapot')
  })

  it('clears everything', () => {
    const server = setup(['username'])
    server.apply(new ApiError(500, 'internal_error', 'boom'))
    server.clear()
    expect(server.general.value).toBeNull()
    expect(server.fields).toEqual({})
  })
})
