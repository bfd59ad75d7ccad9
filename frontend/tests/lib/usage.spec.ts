/** lib/usage: UTC months, the 12-month series, quota bars, hours, money and GB. */
import { describe, expect, it } from 'vitest'

import {
  bytesToGb,
  fillMonths,
  formatCost,
  formatCount,
  formatHours,
  gbToBytes,
  isMonth,
  monthOf,
  quotaBarStatus,
  quotaUse,
  shiftMonth,
  usageCsvPath,
} from '@/lib/usage'

describe('months', () => {
  it('names a moment’s month in UTC, as the server groups usage', () => {
    expect(monthOf(new Date('2026-03-31T23:30:00Z'))).toBe('2026-03')
    expect(monthOf(new Date('2026-03-31T23:30:00-02:00'))).toBe('2026-04')
  })

  it('moves across year ends both ways', () => {
    expect(shiftMonth('2026-01', -1)).toBe('2025-12')
    expect(shiftMonth('2025-12', 1)).toBe('2026-01')
    expect(shiftMonth('2026-05', -11)).toBe('2025-06')
    expect(shiftMonth('2026-05', 0)).toBe('2026-05')
    expect(() => shiftMonth('2026-13', 1)).toThrow()
  })

  it('recognises YYYY-MM only', () => {
    expect(isMonth('2026-05')).toBe(true)
    expect(isMonth('2026-5')).toBe(false)
    expect(isMonth('2026-00')).toBe(false)
    expect(isMonth(undefined)).toBe(false)
  })

  it('fills the 12 months ending with the chosen one, oldest first, zeros where nothing ran', () => {
    const rows = [
      { month: '2026-04', gpu_hours: 2, cpu_hours: 1, cost: null },
      { month: '2025-01', gpu_hours: 9, cpu_hours: 9, cost: null },
    ]
    const filled = fillMonths(rows, '2026-05', (month) => ({ month, gpu_hours: 0, cpu_hours: 0, cost: null }))
    expect(filled).toHaveLength(12)
    expect(filled[0]!.month).toBe('2025-06')
    expect(filled[11]!.month).toBe('2026-05')
    expect(filled[10]).toBe(rows[0])
    expect(filled.some((row) => row.month === '2025-01')).toBe(false)
  })
})

describe('quotas', () => {
  it('has no bar without a limit', () => {
    expect(quotaUse(5, null)).toEqual({ percent: 0, state: 'unlimited' })
    expect(quotaBarStatus('unlimited')).toBe('')
  })

  it('warns from 80 % and caps the bar at 100 % when over', () => {
    expect(quotaUse(4, 10)).toEqual({ percent: 40, state: 'ok' })
    expect(quotaUse(8, 10).state).toBe('warning')
    expect(quotaUse(15, 10)).toEqual({ percent: 100, state: 'exceeded' })
    expect(quotaBarStatus('exceeded')).toBe('exception')
  })

  it('treats a zero limit as none allowed', () => {
    expect(quotaUse(0, 0).state).toBe('warning')
    expect(quotaUse(0.1, 0).state).toBe('exceeded')
  })
})

describe('numbers', () => {
  it('writes hours with the precision small numbers need', () => {
    expect(formatHours(0, 'en')).toBe('0')
    expect(formatHours(0.00123, 'en')).toBe('0.0012')
    expect(formatHours(0.5, 'en')).toBe('0.5')
    expect(formatHours(3.14159, 'en')).toBe('3.14')
    expect(formatHours(1234.5, 'en')).toBe('1,235')
    expect(formatHours(null, 'en')).toBe('—')
  })

  it('writes money in the currency, or after the number for a non-ISO unit', () => {
    expect(formatCost(12.5, 'USD', 'en')).toBe('$12.50')
    expect(formatCost(0.001, 'EUR', 'en')).toBe('€0.001')
    expect(formatCost(3, 'credits', 'en')).toBe('3.00 credits')
    expect(formatCost(null, 'USD', 'en', 'no prices')).toBe('no prices')
    expect(formatCost(1, 'CNY', 'zh-CN')).toMatch(/1\.00/)
  })

  it('counts in the UI language', () => {
    expect(formatCount(1234567, 'en')).toBe('1,234,567')
    expect(formatCount(undefined, 'en')).toBe('—')
  })

  it('converts storage between GB (the form) and bytes (the API)', () => {
    expect(gbToBytes(1)).toBe(1024 ** 3)
    expect(gbToBytes(null)).toBeNull()
    expect(bytesToGb(1.5 * 1024 ** 3)).toBe(1.5)
    expect(bytesToGb(gbToBytes(12.34))).toBe(12.34)
  })

  it('asks the report for a month as CSV', () => {
    expect(usageCsvPath('2026-05')).toBe('/api/admin/usage?month=2026-05&format=csv')
  })
})
