"""The "clean text" preprocessing option: tidy prose without touching code or meaningful brackets.

Training text mixes prose with code, chat tokens and maths, so cleaning is conservative:

- Code is never changed: fenced blocks (```/~~~, unclosed ones run to the end), indented code
  (4 spaces or a tab, with the blank lines between such lines), and in prose inline `code` spans
  and $$display maths$$.
- In prose: control characters go (tab and newline stay), full-width ASCII letters and digits become
  ASCII (full-width punctuation stays: Chinese text uses it), real HTML tags and comments go (a known
  tag name with well-formed attributes; see `_is_tag`), `&entity;` references are unescaped,
  whitespace runs inside a line become one space, trailing spaces and extra blank lines go. Each
  line's indentation is kept (nested lists, Chinese paragraph indents).
- Angle brackets that are not HTML stay: generics (`List<String>`, `Box<A>`), comparisons
  (`a < b > c`), special tokens (`<|im_start|>`, `<s>`, `</s>`, `<image>`), e-mail and URL autolinks
  (`<a@b.c>`), `#include <map>`.

No NFKC: it would rewrite maths and symbols (`x²` → `x2`, `½` → `1⁄2`); NFC is lossless.
"""

from __future__ import annotations

import html
import re
import unicodedata
from itertools import groupby

# Tab, newline and carriage return stay; zero-width joiners stay too (emoji, Indic and Persian text).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff]")
_LINE_SEPARATORS = re.compile(r"\r\n?|[\u2028\u2029]")
_FULLWIDTH_ALNUM = re.compile(r"[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")

_LINES = re.compile(r"[^\n]*\n|[^\n]+")
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_INDENTED = re.compile(r"^(?: {4}|\t)")
_BLANK = re.compile(r"^[ \t]*$")
# A span does not run past a blank line: one stray backtick must not shield whole paragraphs.
_PROTECTED = re.compile(r"(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)|\$\$(?:(?!\n[ \t]*\n).)+?\$\$", re.S)
_PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
# Removed block tags leave \x01 (no control character survives to here), then `_separator` decides.
_SEPARATOR = "\x01"
_SEPARATOR_RUNS = re.compile(r"\x01+")


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Inline elements vanish without a trace (`wor<b>ld</b>` is one word); others separate words.
_INLINE = _names(
    "a abbr b bdi bdo big cite code del dfn em font i ins kbd mark q small span strike strong sub sup tt u"
)
# Tags that HTML writes without attributes and without a closing tag (`<br>`, `<p>Hello`).
_BARE = _names("br hr wbr p li dt dd tr td th tbody thead tfoot colgroup caption option")
# Left out on purpose: `s` (the <s> and </s> tokens of Llama-style vocabularies), `image`, `video`
# and `audio` (multimodal placeholders), and names that are common C++ headers or code words
# (`map`, `set`, `data`, `time`, `object`, `template`, `var`, `param`, `output`).
_HTML_TAGS = (
    _INLINE
    | _BARE
    | _names(
        "address area article aside base blockquote body button center col details dialog div dl embed "
        "fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 head header html iframe img input "
        "label legend link main meta nav noscript ol optgroup picture pre section select source summary "
        "table textarea title track ul"
    )
)
_ATTRIBUTES = r"""(?:\s+[A-Za-z_:][-\w:.]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*\s*"""
_TAG = re.compile(
    r"(?i:<!doctype\b[^<>]*>)"
    r"|<(?P<close>/)?(?P<name>[A-Za-z][A-Za-z0-9]*)(?P<attrs>" + _ATTRIBUTES + r")(?P<self>/)?>",
    re.S,
)
# Only tried when the text closes one: an unclosed <script> or <!-- would make each a scan to the end.
_RAW_ELEMENT = re.compile(r"<(script|style)\b" + _ATTRIBUTES + r">.*?</\1\s*>|<!--.*?-->", re.S)
_CLOSING = re.compile(r"</([a-z][a-z0-9]*)\s*>")
_INCLUDE = re.compile(r"#\s*(?:include|import)\s*$")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def clean(text: str) -> str:
    """`text` with its prose cleaned and its code untouched (see the module docstring)."""
    pieces = []
    segments = _segments(text)
    for i, (is_code, chunk) in enumerate(segments):
        if is_code:
            pieces.append(chunk)
            continue
        prose = _clean_prose(chunk)
        if i == 0:
            prose = re.sub(r"^(?:[ \t\u00a0\u3000]*\n)+", "", prose)
        if i == len(segments) - 1:
            prose = prose.rstrip()
        elif prose and chunk.endswith("\n") and not prose.endswith("\n"):
            prose += "\n"  # the code after it must still start on a line of its own
        pieces.append(prose)
    return "".join(pieces)


def _segments(text: str) -> list[tuple[bool, str]]:
    """`text` as (is code, text) runs of whole lines (each with its own line ending)."""
    if not ("```" in text or "~~~" in text or "\n    " in text or "\n\t" in text or _INDENTED.match(text)):
        return [(False, text)] if text else []  # most rows: no line is code, skip the line scan
    lines = _LINES.findall(text)
    kinds = [False] * len(lines)
    i = 0
    while i < len(lines):
        bare = lines[i].rstrip("\r\n")
        fence = _FENCE_OPEN.match(bare)
        if fence and not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
            closer = re.compile(rf"^ {{0,3}}{re.escape(fence.group(1)[0])}{{{len(fence.group(1))},}}[ \t]*$")
            end = next((j for j in range(i + 1, len(lines)) if closer.match(lines[j].rstrip("\r\n"))), None)
            last = len(lines) - 1 if end is None else end
            kinds[i : last + 1] = [True] * (last + 1 - i)
            i = last + 1
            continue
        if _INDENTED.match(bare) and not _BLANK.match(bare):
            kinds[i] = True
        i += 1
    _join_blank_lines_inside_indented_code(lines, kinds)
    runs = groupby(zip(kinds, lines, strict=True), key=lambda pair: pair[0])
    return [(is_code, "".join(line for _, line in run)) for is_code, run in runs]


def _join_blank_lines_inside_indented_code(lines: list[str], kinds: list[bool]) -> None:
    i = 0
    while i < len(lines):
        if kinds[i] or not _BLANK.match(lines[i].rstrip("\r\n")):
            i += 1
            continue
        j = i
        while j < len(lines) and not kinds[j] and _BLANK.match(lines[j].rstrip("\r\n")):
            j += 1
        if i > 0 and kinds[i - 1] and j < len(lines) and kinds[j] and _INDENTED.match(lines[j]):
            kinds[i:j] = [True] * (j - i)
        i = j


def _clean_prose(text: str) -> str:
    # Each step runs only when its trigger character is there: most rows are plain text, and a dry
    # run cleans every row of a dataset while someone waits.
    text = unicodedata.normalize("NFC", _CONTROL.sub("", text))
    if "\r" in text or "\u2028" in text or "\u2029" in text:
        text = _LINE_SEPARATORS.sub("\n", text)
    # \x00 cannot occur any more: it marks the spans kept as they are while the rest is cleaned.
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group())
        return f"\x00{len(kept) - 1}\x00"

    if "`" in text or "$$" in text:
        text = _PROTECTED.sub(keep, text)
    if max(text, default="") >= "\uff10":
        text = _FULLWIDTH_ALNUM.sub(lambda m: chr(ord(m.group()) - 0xFEE0), text)
    if "<" in text:
        if "</script" in text or "</style" in text or "-->" in text:
            text = _RAW_ELEMENT.sub(_SEPARATOR, text)
        closed = set(_CLOSING.findall(text))
        text = _SEPARATOR_RUNS.sub(_separator, _TAG.sub(lambda m: _replace_tag(m, closed), text))
    if "&" in text:
        text = _ENTITY.sub(lambda m: _CONTROL.sub("", html.unescape(m.group())), text)
    lines = []
    for line in text.split("\n"):
        body = line.lstrip(" \t\u00a0\u3000")
        lines.append(line[: len(line) - len(body)] + _SPACES.sub(" ", body).rstrip())
    text = "\n".join(lines)
    if "\n\n\n" in text:
        text = _BLANK_RUNS.sub("\n\n", text)
    return _PLACEHOLDER.sub(lambda m: kept[int(m.group(1))], text) if kept else text


def _replace_tag(match: re.Match[str], closed: set[str]) -> str:
    """What an HTML-looking match becomes: itself when it is not a real tag."""
    if match.group("name") is None:  # a doctype
        return _SEPARATOR
    if not _is_tag(match, closed):
        return match.group()
    name = match.group("name")
    if name == "br":
        return "\n"
    return "" if name in _INLINE else _SEPARATOR


def _is_tag(match: re.Match[str], closed: set[str]) -> bool:
    """Only lower-case tags (as HTML5 writes them) count: `Box<A>`, `<T extends B>` or `<Button/>`
    are code. An opening tag without its closing one counts when it has attributes or is one HTML
    leaves unclosed (`<p>Hello`), and, unless the text closes some tag (it is HTML), not right after
    a word (`x<p>y` is a comparison)."""
    name = match.group("name")
    if name not in _HTML_TAGS:
        return False
    text, start = match.string, match.start()
    if _INCLUDE.search(text, text.rfind("\n", 0, start) + 1, start):
        return False
    attributes = match.group("attrs").strip()
    if match.group("close"):
        return not (attributes or match.group("self"))
    if match.group("self") or name in closed:
        return True
    before = text[start - 1] if start > 0 else " "
    if not closed and (before.isalnum() or before in "_)]:."):
        return False
    return bool(attributes) or name in _BARE


def _separator(match: re.Match[str]) -> str:
    """Where tags that separate words were: one space between two words, nothing next to a space."""
    text = match.string
    before = text[match.start() - 1] if match.start() > 0 else " "
    after = text[match.end()] if match.end() < len(text) else " "
    return "" if before.isspace() or after.isspace() else " "
