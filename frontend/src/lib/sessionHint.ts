/**
 * The server's readable "signed in" cookie (`loraforge_signed_in=1`, set and cleared with the HttpOnly
 * refresh cookie; it holds no secret). Without it there is no session to restore, so the app does not
 * call /api/auth/refresh at start-up: a signed-out visitor's page makes no request that fails.
 */
export const SESSION_HINT_COOKIE = 'loraforge_signed_in'

/** Whether a session may exist (the hint is there). */
export function hasSessionHint(cookies: string = globalThis.document?.cookie ?? ''): boolean {
  return cookies.split(';').some((part) => part.trim() === `${SESSION_HINT_COOKIE}=1`)
}

/** Forget the hint once the server said the session is gone (a refused refresh). */
export function clearSessionHint(): void {
  if (globalThis.document === undefined) return
  document.cookie = `${SESSION_HINT_COOKIE}=; Max-Age=0; Path=/; SameSite=Strict`
}
