/** lib/wordDiff: the sample browser's word-level diff of an answer against the baseline's. */
import { describe, expect, it } from 'vitest'

import { MAX_CELLS, changedShare, tokenize, wordDiff, type DiffPart } from '@/lib/wordDiff'

const side = (parts: DiffPart[], skip: 'add' | 'del') =>
  parts
    .filter((p) => p.op !== skip)
    .map((p) => p.text)
    .join('')

describe('tokenize', () => {
  it('cuts words, spaces and punctuation, and loses nothing', () => {
    expect(tokenize('Hello, world!  x2')).toEqual(['Hello', ',', ' ', 'world', '!', '  ', 'x2'])
    const text = 'a\tb\n\nc — d…'
    expect(tokenize(text).join('')).toBe(text)
  })

  it('makes every CJK character one token, next to Latin words', () => {
    expect(tokenize('我是LoRAForge助手。')).toEqual(['我', '是', 'LoRAForge', '助', '手', '。'])
  })

  it('has no tokens for an empty text', () => {
    expect(tokenize('')).toEqual([])
  })
})

describe('wordDiff', () => {
  it('marks only the changed word', () => {
    expect(wordDiff('the cat sat', 'the dog sat')).toEqual([
      { op: 'same', text: 'the ' },
      { op: 'del', text: 'cat' },
      { op: 'add', text: 'dog' },
      { op: 'same', text: ' sat' },
    ])
  })

  it('reports identical texts as one same part, and empty sides as pure adds or deletes', () => {
    expect(wordDiff('same text', 'same text')).toEqual([{ op: 'same', text: 'same text' }])
    expect(wordDiff('', 'new')).toEqual([{ op: 'add', text: 'new' }])
    expect(wordDiff('old', '')).toEqual([{ op: 'del', text: 'old' }])
    expect(wordDiff('', '')).toEqual([])
  })

  it('finds insertions and deletions in the middle (LCS, not position by position)', () => {
    const parts = wordDiff('a b c d e', 'a x b c e')
    expect(parts.filter((p) => p.op === 'add').map((p) => p.text.trim())).toEqual(['x'])
    expect(parts.filter((p) => p.op === 'del').map((p) => p.text.trim())).toEqual(['d'])
  })

  it('diffs Chinese by character', () => {
    const parts = wordDiff('我喜欢猫', '我喜欢狗')
    expect(parts).toEqual([
      { op: 'same', text: '我喜欢' },
      { op: 'del', text: '猫' },
      { op: 'add', text: '狗' },
    ])
  })

  it('always rebuilds both texts from its parts', () => {
    const pairs: [string, string][] = [
      ['The answer is 42.', 'The answer is probably 41!'],
      ['模型回答：你好 world', '模型的回答：您好 world!'],
      ['x y z', 'z y x'],
    ]
    for (const [a, b] of pairs) {
      const parts = wordDiff(a, b)
      expect(side(parts, 'add')).toBe(a)
      expect(side(parts, 'del')).toBe(b)
      for (let i = 1; i < parts.length; i++) expect(parts[i]!.op).not.toBe(parts[i - 1]!.op)
    }
  })

  it('gives up token by token on a huge middle but still rebuilds both sides', () => {
    const size = Math.ceil(Math.sqrt(MAX_CELLS)) + 10
    const a = Array.from({ length: size }, (_, i) => `a${i}`).join(' ')
    const b = Array.from({ length: size }, (_, i) => `b${i}`).join(' ')
    const parts = wordDiff(`start ${a} end`, `start ${b} end`)
    expect(parts.map((p) => p.op)).toEqual(['same', 'del', 'add', 'same'])
    expect(side(parts, 'add')).toBe(`start ${a} end`)
    expect(side(parts, 'del')).toBe(`start ${b} end`)
  })
})

describe('changedShare', () => {
  it('is the share of new non-space tokens in the other answer', () => {
    expect(changedShare(wordDiff('a b', 'a b'))).toBe(0)
    expect(changedShare(wordDiff('a b', 'c d'))).toBe(1)
    expect(changedShare(wordDiff('a b c d', 'a b c x'))).toBe(0.25)
    expect(changedShare([])).toBe(0)
  })
})
