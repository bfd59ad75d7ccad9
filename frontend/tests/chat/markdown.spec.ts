import { describe, expect, it } from 'vitest'

import { highlightCode, renderMarkdown } from '@/components/chat/markdown'

describe('markdown rendering', () => {
  it('highlights a fenced code block of a registered language and adds a copy button', () => {
    const html = renderMarkdown('Here:\n\n```python\ndef f(x):\n    return "hi"\n```\n', { copyLabel: 'Copy' })
    expect(html).toContain('<code class="hljs language-python">')
    expect(html).toContain('<span class="hljs-keyword">def</span>')
    expect(html).toContain('<span class="hljs-string">&quot;hi&quot;</span>')
    expect(html).toContain('<button type="button" class="md-code__copy" data-copy-code>Copy</button>')
  })

  it('escapes code of an unknown language instead of highlighting it', () => {
    const html = renderMarkdown('```nosuchlang\n<b>x</b>\n```')
    expect(html).toContain('<code class="hljs">&lt;b&gt;x&lt;/b&gt;')
    expect(highlightCode('<i>', '')).toBe('&lt;i&gt;')
  })

  it('escapes raw HTML: a model cannot inject markup or scripts', () => {
    const html = renderMarkdown('Hello <script>alert(1)</script> <img src=x onerror=alert(2)> **bold**')
    expect(html).not.toContain('<script')
    expect(html).not.toContain('<img')
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(html).toContain('<strong>bold</strong>')
  })

  it('opens links in a new tab, refuses javascript: URLs, and does not load images', () => {
    const html = renderMarkdown(
      '[ok](https://example.com) [bad](javascript:alert(1)) ![pixel](https://tracker.example/p.png)',
    )
    expect(html).toContain('<a href="https://example.com" target="_blank" rel="noopener noreferrer nofollow">ok</a>')
    expect(html).not.toContain('href="javascript:')
    expect(html).not.toContain('<img')
  })

  it('escapes the language name and the copy label', () => {
    const html = renderMarkdown('```"><x\ncode\n```', { copyLabel: '<b>' })
    expect(html).not.toContain('"><x')
    expect(html).toContain('&lt;b&gt;</button>')
  })
})
