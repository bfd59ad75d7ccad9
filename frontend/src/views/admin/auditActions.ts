/**
 * Suggestions for the audit log's action filter. They mirror `loraforge.services.audit.AuditAction`
 * (the OpenAPI document types `action` as a plain string); the filter also accepts free text, and
 * a value ending in "." selects a whole group on the server.
 */
export const AUDIT_ACTION_GROUPS = ['auth.', 'user.', 'api_key.'] as const

export const AUDIT_ACTIONS = [
  'auth.login_succeeded',
  'auth.login_failed',
  'auth.login_throttled',
  'auth.logout',
  'auth.refresh_reuse_detected',
  'user.registered',
  'user.created',
  'user.updated',
  'user.profile_updated',
  'user.password_changed',
  'user.password_reset',
  'user.role_changed',
  'user.disabled',
  'user.enabled',
  'user.deleted',
  'api_key.created',
  'api_key.revoked',
] as const
