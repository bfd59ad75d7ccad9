/**
 * Markdown for chat answers: markdown-it with raw HTML off (a model's `<script>` is shown as text,
 * never run), links opened in a new tab without an opener, images not loaded (a model could point
 * one at any server and learn who reads the answer), and fenced code highlighted by highlight.js
 * core with a few languages registered (the full bundle is ~1 MB). Every piece of text that ends up
 * in the HTML is escaped by markdown-it or highlight.js, which is what makes `v-html` of the result
 * safe.
 *
 * Each code block gets a copy button (`data-copy-code`); the component rendering the HTML handles
 * the clicks by delegation, since the HTML is a string.
 */
import hljs from 'highlight.js/lib/core'
import bash from 'highlight.js/lib/languages/bash'
import cpp from 'highlight.js/lib/languages/cpp'
import go from 'highlight.js/lib/languages/go'
import java from 'highlight.js/lib/languages/java'
import javascript from 'highlight.js/lib/languages/javascript'
import json from 'highlight.js/lib/languages/json'
import markdown from 'highlight.js/lib/languages/markdown'
import python from 'highlight.js/lib/languages/python'
import rust from 'highlight.js/lib/languages/rust'
import sql from 'highlight.js/lib/languages/sql'
import typescript from 'highlight.js/lib/languages/typescript'
import xml from 'highlight.js/lib/languages/xml'
import yaml from 'highlight.js/lib/languages/yaml'
import MarkdownIt from 'markdown-it'

const LANGUAGES = { bash, cpp, go, java, javascript, json, markdown, python, rust, sql, typescript, xml, yaml }
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language)

export interface RenderEnv {
  /** Label of the code blocks' copy button. */
  copyLabel?: string
}

const md = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false })
md.disable('image')

const escapeHtml = md.utils.escapeHtml

/** Highlighted HTML of a code block, or its escaped text for an unknown language. */
export function highlightCode(code: string, lang: string): string {
  const language = lang ? hljs.getLanguage(lang) : undefined
  if (language === undefined) return escapeHtml(code)
  return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value
}

md.renderer.rules.fence = (tokens, idx, _options, env) => {
  const token = tokens[idx]!
  const info = token.info ? md.utils.unescapeAll(token.info).trim() : ''
  const lang = (info.split(/\s+/)[0] ?? '').toLowerCase()
  const known = lang !== '' && hljs.getLanguage(lang) !== undefined
  const codeClass = known ? `hljs language-${escapeHtml(lang)}` : 'hljs'
  const label = escapeHtml((env as RenderEnv | undefined)?.copyLabel ?? 'Copy')
  return (
    `<div class="md-code"><div class="md-code__bar"><span class="md-code__lang">${escapeHtml(lang)}</span>` +
    `<button type="button" class="md-code__copy" data-copy-code>${label}</button></div>` +
    `<pre><code class="${codeClass}">${highlightCode(token.content, lang)}</code></pre></div>\n`
  )
}

const defaultLinkOpen =
  md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options))
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  const token = tokens[idx]!
  token.attrSet('target', '_blank')
  token.attrSet('rel', 'noopener noreferrer nofollow')
  return defaultLinkOpen(tokens, idx, options, env, self)
}

/** Safe HTML of a Markdown text (see the module comment). */
export function renderMarkdown(text: string, env: RenderEnv = {}): string {
  return md.render(text, { ...env })
}
