/**
 * lib/format: the UI's one date formatter and its durations, in both languages; lib/names: the name
 * bound the server enforces. A scan of src/ keeps every other file from formatting dates itself.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'

import { describe, expect, it } from 'vitest'

import { formatDateTime, formatDuration } from '@/lib/format'
import { NAME_MAX_LENGTH, shortName } from '@/lib/names'

const root = resolve(__dirname, '..', '..')

describe('formatDateTime', () => {
  const saved = '2026-12-07T09:05:00+00:00'

  it('writes an ISO time in the UI language: date and time, or one of them', () => {
    const en = formatDateTime(saved, 'en')
    expect(en).toContain('2026')
    expect(en).toMatch(/Dec/)
    expect(formatDateTime(saved, 'zh-CN')).toMatch(/2026年12月/)
    expect(formatDateTime(saved, 'en', 'date')).not.toMatch(/\d:\d\d/)
    expect(formatDateTime(saved, 'en', 'time')).toMatch(/^\d{1,2}:\d{2}:\d{2}/)
  })

  it('shows the fallback for nothing and an unreadable value as it is', () => {
    expect(formatDateTime(null, 'en')).toBe('—')
    expect(formatDateTime(undefined, 'en', 'datetime', '')).toBe('')
    expect(formatDateTime('', 'en')).toBe('—')
    expect(formatDateTime('not a date', 'en')).toBe('not a date')
  })
})

describe('formatDuration', () => {
  it('counts hours, minutes and seconds in English and Chinese', () => {
    expect(formatDuration(215)).toBe('3m 35s')
    expect(formatDuration(215, 'en')).toBe('3m 35s')
    expect(formatDuration(215, 'zh-CN')).toBe('3分35秒')
    expect(formatDuration(3725, 'en')).toBe('1h 2m 5s')
    expect(formatDuration(3725, 'zh-CN')).toBe('1小时2分5秒')
    expect(formatDuration(4.4, 'zh-CN')).toBe('4秒')
    expect(formatDuration(null, 'zh-CN')).toBe('—')
    expect(formatDuration(-1, 'en')).toBe('—')
  })
})

describe('names', () => {
  it('bounds names as the server does, for every resource people name', () => {
    const openapi = JSON.parse(readFileSync(join(root, 'openapi.json'), 'utf8')) as {
      components: {
        schemas: Record<
          string,
          { properties: Record<string, { maxLength?: number; anyOf?: { maxLength?: number }[] }> }
        >
      }
    }
    const schemas = openapi.components.schemas
    const bound = (schema: string, field: string) => {
      const prop = schemas[schema]!.properties[field]!
      return prop.maxLength ?? prop.anyOf?.find((v) => v.maxLength !== undefined)?.maxLength
    }
    for (const [schema, field] of [
      ['JobCreate', 'name'],
      ['TemplateCreate', 'name'],
      ['ModelCreate', 'name'],
      ['DatasetUpdate', 'name'],
      ['PromptCreate', 'name'],
      ['ConversationUpdate', 'title'],
    ] as const) {
      expect(bound(schema, field), `${schema}.${field}`).toBe(NAME_MAX_LENGTH)
    }
  })

  it('shortens a long name for a toast, keeping short ones whole', () => {
    expect(shortName('tiny run')).toBe('tiny run')
    const long = shortName('n'.repeat(100))
    expect([...long]).toHaveLength(48)
    expect(long.endsWith('…')).toBe(true)
    expect(shortName('训练'.repeat(40), 10)).toBe(`${'训练'.repeat(4)}训…`)
  })
})

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sources(path)
    return /\.(ts|vue)$/.test(name) && !name.endsWith('.d.ts') ? [path] : []
  })
}

describe('one date formatter', () => {
  it('is the only place in src/ that formats a date for people to read', () => {
    const formatting = /Intl\.DateTimeFormat|toLocale(Date|Time)?String|\bd\(new Date/
    const offenders = sources(join(root, 'src'))
      .filter((path) => !path.endsWith(join('lib', 'format.ts')))
      .filter((path) => formatting.test(readFileSync(path, 'utf8')))
      .map((path) => relative(root, path))
    expect(offenders).toEqual([])
  })
})
