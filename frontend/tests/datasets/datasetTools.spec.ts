import { describe, expect, it } from 'vitest'

import { detectionView, mappedColumns } from '@/components/datasets/detection'
import { infoEntries } from '@/components/datasets/importInfo'
import {
  buildMapping,
  convertRow,
  initialForm,
  missingRoles,
  rolesFor,
  withShape,
  type MappingForm,
} from '@/components/datasets/mapping'
import { sourceVersion } from '@/components/datasets/rawSample'
import type { DatasetVersion } from '@/api/datasets'
import { csvRecords, decodeText, parseRawRows } from '@/lib/rawRows'

describe('raw rows of an original file', () => {
  it('reads JSONL by line number and drops a row cut by a range request', () => {
    const text = '{"a": 1}\n\n{"a": 2}\n"bare"\n{"a": 3, "b'
    expect(parseRawRows(text, 'jsonl', { complete: false, limit: 10 })).toEqual({
      rows: [
        { row: 1, data: { a: 1 } },
        { row: 3, data: { a: 2 } },
        { row: 4, data: { text: 'bare' } },
      ],
      columns: ['a', 'text'],
    })
    expect(parseRawRows(text, 'jsonl', { complete: false, limit: 1 })!.rows).toHaveLength(1)
  })

  it('reads a JSON array even when the head ends inside an element, and an object holding the rows', () => {
    const head = '[{"q": "a, ]\\"x", "n": [1, {"k": 2}]}, 7, {"q": "b"}, {"q": "cut'
    const sample = parseRawRows(head, 'json', { complete: false, limit: 10 })!
    // The number is a record but no row, as on the server: row numbers stay record numbers.
    expect(sample.rows).toEqual([
      { row: 1, data: { q: 'a, ]"x', n: [1, { k: 2 }] } },
      { row: 3, data: { q: 'b' } },
    ])
    const wrapped = JSON.stringify({ version: 1, data: [{ q: 'x' }, { q: 'y' }] })
    expect(parseRawRows(wrapped, 'json', { complete: true, limit: 10 })!.rows.map((r) => r.data.q)).toEqual(['x', 'y'])
    expect(parseRawRows('\uFEFF["one", "two"]', 'json', { complete: true, limit: 10 })!.rows).toEqual([
      { row: 1, data: { text: 'one' } },
      { row: 2, data: { text: 'two' } },
    ])
  })

  it('reads CSV and TSV with quoted fields, and leaves Parquet to the server', () => {
    const csv = 'question,answer\r\n"Hi, there","He said ""yes""\nthen left"\nq2,a2\nq3,"unfinished'
    expect(csvRecords(csv, ',', true, 10)).toEqual([
      ['question', 'answer'],
      ['Hi, there', 'He said "yes"\nthen left'],
      ['q2', 'a2'],
    ])
    expect(parseRawRows(csv, 'csv', { complete: false, limit: 10 })!.rows).toEqual([
      { row: 1, data: { question: 'Hi, there', answer: 'He said "yes"\nthen left' } },
      { row: 2, data: { question: 'q2', answer: 'a2' } },
    ])
    expect(parseRawRows('a\tb\n1\t2', 'tsv', { complete: true, limit: 10 })!.rows).toEqual([
      { row: 1, data: { a: '1', b: '2' } },
    ])
    expect(parseRawRows('one\n\ntwo\nth', 'txt', { complete: false, limit: 10 })!.rows).toEqual([
      { row: 1, data: { text: 'one' } },
      { row: 3, data: { text: 'two' } },
    ])
    expect(parseRawRows('PAR1', 'parquet', { complete: true, limit: 10 })).toBeNull()
  })

  it('decodes in the encoding the server detected', () => {
    const gbk = new Uint8Array([0xc4, 0xe3, 0xba, 0xc3]) // 你好
    expect(decodeText(gbk.buffer, 'gb18030')).toBe('你好')
    expect(decodeText(new TextEncoder().encode('ok').buffer as ArrayBuffer, 'no-such-encoding')).toBe('ok')
  })
})

describe('column mapping', () => {
  const alpacaRow = { instruction: 'Add', input: '1+1', output: '2', better: '2, exactly', sys: 'Be brief.' }

  it('asks for the roles each format needs', () => {
    const roles = (form: Parameters<typeof rolesFor>) =>
      rolesFor(...form).map((r) => `${r.role}${r.required ? '*' : ''}`)
    expect(roles(['alpaca', 'columns'])).toEqual(['prompt*', 'query', 'response*', 'system', 'history'])
    expect(roles(['preference', 'columns'])).toEqual(['prompt*', 'query', 'chosen*', 'rejected*', 'system'])
    expect(roles(['kto', 'conversation'])).toEqual(['messages*', 'kto_tag*', 'system'])
    expect(roles(['text', 'columns'])).toEqual(['text*'])
  })

  it('starts from the current mapping, guesses the rest, and builds the entry the server takes', () => {
    const form = initialForm('alpaca', { columns: { response: 'better' } }, Object.keys(alpacaRow))
    expect(form.columns).toEqual({ prompt: 'instruction', query: 'input', response: 'better', system: '', history: '' })
    form.columns.system = 'sys'
    expect(buildMapping(form)).toEqual({
      formatting: 'alpaca',
      ranking: false,
      columns: { prompt: 'instruction', query: 'input', response: 'better', system: 'sys' },
      tags: {},
    })
    expect(convertRow(alpacaRow, form)).toEqual({
      ok: true,
      example: {
        prompt: [{ role: 'user', content: 'Add\n1+1' }],
        response: [{ role: 'assistant', content: '2, exactly' }],
        system: 'Be brief.',
        tools: '',
        label: null,
      },
    })
    form.columns.prompt = ''
    expect(missingRoles(form)).toEqual(['prompt'])
  })

  it('previews ShareGPT conversations with their tags, and names the field of a bad row', () => {
    const columns = ['conversations', 'system']
    const form = initialForm('sharegpt', null, columns)
    expect(form.tags).toMatchObject({ role_tag: 'from', content_tag: 'value', user_tag: 'human' })
    const good = {
      conversations: [
        { from: 'system', value: 'S' },
        { from: 'human', value: 'Q' },
        { from: 'gpt', value: 'A' },
      ],
    }
    expect(convertRow(good, form)).toMatchObject({
      ok: true,
      example: {
        system: 'S',
        prompt: [{ role: 'user', content: 'Q' }],
        response: [{ role: 'assistant', content: 'A' }],
      },
    })
    expect(buildMapping(form)).toMatchObject({ formatting: 'sharegpt', columns: { messages: 'conversations' } })
    const bad = { conversations: [{ from: 'bot', value: 'Q' }] }
    expect(convertRow(bad, form)).toEqual({
      ok: false,
      field: 'conversations[0].from',
      message: 'expected a user turn (human or observation), got "bot"',
    })
  })

  it('maps preference pairs and KTO labels in both shapes', () => {
    const pairForm: MappingForm = initialForm('preference', null, ['question', 'good', 'bad'])
    expect(pairForm.shape).toBe('columns')
    Object.assign(pairForm.columns, { prompt: 'question', chosen: 'good', rejected: 'bad' })
    expect(convertRow({ question: 'Q', good: 'G', bad: 'B' }, pairForm)).toMatchObject({
      ok: true,
      example: { response: [{ content: 'G' }, { content: 'B' }] },
    })
    expect(buildMapping(pairForm)).toMatchObject({ formatting: 'alpaca', ranking: true })

    const kto = initialForm('kto', null, ['messages', 'label'])
    expect(kto.shape).toBe('conversation')
    expect(kto.columns).toMatchObject({ messages: 'messages', kto_tag: 'label' })
    const row = {
      messages: [
        { role: 'user', content: 'Q' },
        { role: 'assistant', content: 'A' },
      ],
      label: 'false',
    }
    expect(convertRow(row, kto)).toMatchObject({ ok: true, example: { label: false } })
    expect(convertRow({ ...row, label: 'maybe' }, kto)).toMatchObject({ ok: false, field: 'label' })
    expect(buildMapping(kto)).toMatchObject({
      formatting: 'openai',
      columns: { messages: 'messages', kto_tag: 'label' },
    })

    // Switching shape keeps what still applies and guesses the new roles.
    const reshaped = withShape({ ...kto, shape: 'columns' }, ['messages', 'label', 'prompt', 'completion'])
    expect(reshaped.columns).toEqual({
      prompt: 'prompt',
      query: '',
      response: 'completion',
      kto_tag: 'label',
      system: '',
    })
  })

  it('maps a text column to the prompt column of a text entry', () => {
    const form = initialForm('text', null, ['body'])
    form.columns.text = 'body'
    expect(buildMapping(form)).toEqual({ formatting: 'text', ranking: false, columns: { prompt: 'body' }, tags: {} })
    expect(convertRow({ body: '  ' }, form)).toEqual({ ok: false, field: 'body', message: 'empty text' })
  })
})

describe('detection evidence', () => {
  it('computes the confidence and orders the votes', () => {
    const view = detectionView(
      {
        sampled_rows: 4,
        votes: { alpaca: 3, unknown: 1 },
        first_row_of: { unknown: 1, alpaca: 2 },
        matched_keys: ['instruction', 'output'],
        source: 'detected',
        file_type: 'jsonl',
        encoding: 'UTF-8',
        notes: ['UTF-8 byte-order mark removed'],
      },
      'alpaca',
    )
    expect(view).toEqual({
      source: 'detected',
      sampledRows: 4,
      votes: [
        { format: 'alpaca', rows: 3, firstRow: 2 },
        { format: 'unknown', rows: 1, firstRow: 1 },
      ],
      confidence: 0.75,
      matchedKeys: ['instruction', 'output'],
      fileType: 'jsonl',
      encoding: 'UTF-8',
      notes: ['UTF-8 byte-order mark removed'],
      sampleRow: 2,
    })
    expect(detectionView({}, 'text')).toMatchObject({ source: 'unknown', confidence: null, votes: [], sampleRow: null })
    expect(mappedColumns({ formatting: 'alpaca', columns: { prompt: 'q', bad: 3, system: 'sys' } })).toEqual([
      ['prompt', 'q'],
      ['query', 'input'],
      ['response', 'output'],
      ['system', 'sys'],
    ])
    expect(mappedColumns({ formatting: 'openai', columns: { kto_tag: 'label' } })).toEqual([
      ['messages', 'messages'],
      ['kto_tag', 'label'],
    ])
    expect(mappedColumns({ formatting: 'alpaca', ranking: true, columns: {} }).map(([role]) => role)).toEqual([
      'prompt',
      'query',
    ])
    expect(mappedColumns(null)).toEqual([])
  })

  it('reads the rows of the newest version that kept its original file', () => {
    const v = (id: number, original: string | null) => ({ id, original_filename: original }) as DatasetVersion
    const versions = [v(3, null), v(2, 'b.jsonl'), v(1, 'a.jsonl')]
    expect(sourceVersion(versions, 3)?.id).toBe(2)
    expect(sourceVersion(versions, 1)?.id).toBe(1)
    expect(sourceVersion([v(1, null)], 1)).toBeNull()
  })
})

describe('dataset_info.json entries', () => {
  it('lists entries with the state of their data file', () => {
    const info = JSON.stringify({
      identity: { file_name: 'identity.json' },
      nested: { file_name: 'data/kto.jsonl', formatting: 'sharegpt' },
      remote: { hf_hub_url: 'org/set' },
    })
    expect(infoEntries(info, ['identity.json'])).toEqual([
      { name: 'identity', fileName: 'identity.json', status: 'attached' },
      { name: 'nested', fileName: 'data/kto.jsonl', status: 'missing' },
      { name: 'remote', fileName: null, status: 'hub' },
    ])
    expect(infoEntries(info, ['kto.jsonl'])![1]!.status).toBe('attached')
    expect(infoEntries('[1, 2]', [])).toBeNull()
    expect(infoEntries('{not json', [])).toBeNull()
  })
})
