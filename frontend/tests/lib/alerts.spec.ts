/** lib/alerts and lib/alertRules: the alerts list's colours, actions and paging; the rules form's bounds and PUT body. */
import { describe, expect, it } from 'vitest'

import { RULE_KEYS, boundsProblem, copyRules, rulesPatch, type RuleValues } from '@/lib/alertRules'
import {
  ALERT_FILTERS,
  canAcknowledge,
  canResolve,
  failedDeliveries,
  isAlertFilter,
  pageWindow,
  resolutionOf,
  severityTagType,
  statusTagType,
} from '@/lib/alerts'

describe('alerts', () => {
  it('colours severities and statuses, unknown ones neutral', () => {
    expect(severityTagType('critical')).toBe('danger')
    expect(severityTagType('warning')).toBe('warning')
    expect(severityTagType('info-from-a-newer-server')).toBe('info')
    expect(statusTagType('open')).toBe('danger')
    expect(statusTagType('acknowledged')).toBe('warning')
    expect(statusTagType('resolved')).toBe('success')
    expect(statusTagType('?')).toBe('info')
  })

  it('offers acknowledge only while open, resolve until resolved', () => {
    expect([canAcknowledge({ status: 'open' }), canResolve({ status: 'open' })]).toEqual([true, true])
    expect([canAcknowledge({ status: 'acknowledged' }), canResolve({ status: 'acknowledged' })]).toEqual([false, true])
    expect([canAcknowledge({ status: 'resolved' }), canResolve({ status: 'resolved' })]).toEqual([false, false])
  })

  it('tells a person’s resolution from one that cleared by itself', () => {
    const base = { resolved_at: null, resolved_by: null }
    expect(resolutionOf(base)).toBeNull()
    const at = '2026-05-01T10:00:00Z'
    expect(resolutionOf({ resolved_at: at, resolved_by: null, resolved_automatically: true })).toBe('automatic')
    expect(resolutionOf({ resolved_at: at, resolved_by: 'ops', resolved_automatically: false })).toBe('manual')
    // A deleted user: no name left, but the flag still says a person did it.
    expect(resolutionOf({ resolved_at: at, resolved_by: null, resolved_automatically: false })).toBe('manual')
    expect(resolutionOf({ resolved_at: at, resolved_by: 'ops' })).toBe('manual')
    expect(resolutionOf({ resolved_at: at, resolved_by: null })).toBe('automatic')
  })

  it('accepts the API’s status filters only', () => {
    for (const filter of ALERT_FILTERS) expect(isAlertFilter(filter)).toBe(true)
    expect(isAlertFilter('closed')).toBe(false)
    expect(isAlertFilter(['open'])).toBe(false)
  })

  it('names the channels that failed to deliver', () => {
    expect(failedDeliveries({ notified: 2, email: 'failed', webhook: 'sent' })).toEqual(['email'])
    expect(failedDeliveries({ email: 'failed', webhook: 'failed', email_error: 'timeout' })).toEqual([
      'email',
      'webhook',
    ])
    expect(failedDeliveries({ email: 'none', webhook: 'pending' })).toEqual([])
    expect(failedDeliveries({})).toEqual([])
  })

  it('turns the pager’s page into limit and offset', () => {
    expect(pageWindow(1, 20)).toEqual({ limit: 20, offset: 0 })
    expect(pageWindow(3, 50)).toEqual({ limit: 50, offset: 100 })
    expect(pageWindow(0, 0)).toEqual({ limit: 1, offset: 0 })
  })
})

describe('alert rules', () => {
  const saved: RuleValues = {
    gpu_temperature_c: null,
    gpu_memory_percent: 95,
    disk_free_gb: 5,
    job_hung_minutes: 30,
    job_hung_action: 'alert',
    node_failures: 3,
    node_failures_window_hours: 24,
  }

  it('sends only what changed', () => {
    const edited = copyRules(saved)
    expect(rulesPatch(saved, edited)).toEqual({})
    edited.disk_free_gb = 500
    edited.job_hung_action = 'stop'
    edited.gpu_temperature_c = 80
    expect(rulesPatch(saved, edited)).toEqual({ disk_free_gb: 500, job_hung_action: 'stop', gpu_temperature_c: 80 })
    // The copy is a copy: the saved values are untouched.
    expect(saved.disk_free_gb).toBe(5)
  })

  it('sends null for a rule put back to its default, whatever the form shows', () => {
    const edited = { ...saved, disk_free_gb: 9 }
    expect(rulesPatch(saved, edited, ['disk_free_gb'])).toEqual({ disk_free_gb: null })
    const all = rulesPatch(saved, saved, RULE_KEYS)
    expect(Object.keys(all).sort()).toEqual([...RULE_KEYS].sort())
    expect(Object.values(all).every((value) => value === null)).toBe(true)
  })

  it('checks the server’s bounds before sending', () => {
    expect(boundsProblem('gpu_temperature_c', null)).toBeNull()
    expect(boundsProblem('gpu_temperature_c', 29)).toBe('tooLow')
    expect(boundsProblem('gpu_temperature_c', 121)).toBe('tooHigh')
    expect(boundsProblem('gpu_memory_percent', 0)).toBe('tooLow')
    expect(boundsProblem('gpu_memory_percent', 100)).toBeNull()
    expect(boundsProblem('disk_free_gb', 0)).toBeNull()
    expect(boundsProblem('disk_free_gb', 100000)).toBeNull()
    expect(boundsProblem('disk_free_gb', null)).toBe('required')
    expect(boundsProblem('job_hung_minutes', 0)).toBe('tooLow')
    expect(boundsProblem('node_failures', 2.5)).toBe('integer')
    expect(boundsProblem('node_failures', 1001)).toBe('tooHigh')
    expect(boundsProblem('node_failures_window_hours', Number.NaN)).toBe('required')
  })
})
