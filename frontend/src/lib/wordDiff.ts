/**
 * A word-level diff of two answers, for the evaluation sample browser (a model's answer against the
 * baseline model's). Text is cut into tokens — runs of letters/digits, runs of whitespace, single
 * punctuation marks, and single CJK characters (Chinese and Japanese have no spaces between words,
 * so a character is the smallest unit that reads as "changed") — and the longest common subsequence
 * of the two token lists decides what is kept, removed and added.
 *
 * LCS is quadratic: the common head and tail are cut off first (answers of one prompt usually share
 * them), and a middle still too large for the table is reported as one removal and one addition
 * rather than freezing the tab.
 */

export type DiffOp = 'same' | 'add' | 'del'

export interface DiffPart {
  op: DiffOp
  text: string
}

/** Above this many LCS cells (base tokens × other tokens) the middle is not diffed token by token. */
export const MAX_CELLS = 4_000_000

// CJK ideographs (with extension A and compatibility forms), kana, Hangul syllables, and CJK/full-width punctuation.
const CJK = '\\u3000-\\u303f\\u3040-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uac00-\\ud7af\\uf900-\\ufaff\\uff00-\\uffef'
const TOKEN = new RegExp(`[${CJK}]|[^\\s${CJK}\\p{P}\\p{S}]+|\\s+|[^]`, 'gu')

/** The tokens of a text; joined back together they are the text again. */
export function tokenize(text: string): string[] {
  return text.match(TOKEN) ?? []
}

function push(parts: DiffPart[], op: DiffOp, text: string): void {
  if (!text) return
  const last = parts[parts.length - 1]
  if (last && last.op === op) last.text += text
  else parts.push({ op, text })
}

/**
 * How `other` differs from `base`: `same` parts are in both, `del` only in base, `add` only in
 * other. Adjacent parts of one kind are merged; base is the same + del parts in order, other the
 * same + add parts.
 */
export function wordDiff(base: string, other: string): DiffPart[] {
  const a = tokenize(base)
  const b = tokenize(other)
  let head = 0
  while (head < a.length && head < b.length && a[head] === b[head]) head++
  let tail = 0
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++

  const parts: DiffPart[] = []
  push(parts, 'same', a.slice(0, head).join(''))
  const midA = a.slice(head, a.length - tail)
  const midB = b.slice(head, b.length - tail)
  if (midA.length * midB.length > MAX_CELLS) {
    push(parts, 'del', midA.join(''))
    push(parts, 'add', midB.join(''))
  } else {
    for (const part of lcsDiff(midA, midB)) push(parts, part.op, part.text)
  }
  push(parts, 'same', a.slice(a.length - tail).join(''))
  return parts
}

function lcsDiff(a: string[], b: string[]): DiffPart[] {
  const n = a.length
  const m = b.length
  const width = m + 1
  // lengths[i * width + j] = LCS length of a[i:] and b[j:]; filled from the end so the walk goes forward.
  const lengths = new Uint32Array((n + 1) * width)
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lengths[i * width + j] =
        a[i] === b[j]
          ? lengths[(i + 1) * width + j + 1]! + 1
          : Math.max(lengths[(i + 1) * width + j]!, lengths[i * width + j + 1]!)
    }
  }
  const parts: DiffPart[] = []
  let i = 0
  let j = 0
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      push(parts, 'same', a[i]!)
      i++
      j++
    } else if (lengths[(i + 1) * width + j]! >= lengths[i * width + j + 1]!) {
      push(parts, 'del', a[i++]!)
    } else {
      push(parts, 'add', b[j++]!)
    }
  }
  while (i < n) push(parts, 'del', a[i++]!)
  while (j < m) push(parts, 'add', b[j++]!)
  return parts
}

/** Share of `other`'s tokens that are new against base (0 = identical, 1 = nothing in common). */
export function changedShare(parts: readonly DiffPart[]): number {
  let added = 0
  let total = 0
  for (const part of parts) {
    if (part.op === 'del') continue
    const n = tokenize(part.text).filter((tok) => tok.trim() !== '').length
    total += n
    if (part.op === 'add') added += n
  }
  return total === 0 ? 0 : added / total
}
