"""Split a reasoning model's `<think>…</think>` text from its answer (whole texts and streams).

Two forms occur in the wild:
- the model writes both tags: `<think>reasoning</think>answer` (Qwen3, QwQ, most fine-tunes);
- the chat template already opened the tag in the prompt (DeepSeek-R1 and its distills), so the
  output is `reasoning</think>answer` with only the closing tag.

Only a leading reasoning block is split off; a `<think>` later in an answer is ordinary text. After
`</think>` the blank lines models put before the answer are dropped.

`ThinkSplitter` works on a stream: tags may arrive split across any number of chunks, so text that
could be the start of a tag is held back until the next chunk decides it (at most `len("</think>")`
characters, so time to first token is unaffected). A stream cannot take back text it already sent
as content: when a closing tag arrives without an opening one after answer text was sent, the tag
is dropped and the text keeps its place. Pass `opened=True` when the template is known to open the
tag (`template_opens_think`), and the stream splits the second form exactly like a whole text does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"
# Blank space held at the start while a `<think>` may follow; beyond this it is simply the answer.
_MAX_LEADING_SPACE = 64


class _State(Enum):
    START = "start"  # nothing but whitespace seen: an opening tag may still come
    THINK_START = "think_start"  # opened by the template: a redundant `<think>` may still come
    THINK = "think"
    AFTER_CLOSE = "after_close"  # just closed: leading blank lines of the answer are dropped
    CONTENT = "content"


@dataclass
class Split:
    reasoning: str = ""
    content: str = ""

    def __bool__(self) -> bool:
        return bool(self.reasoning or self.content)

    def extend(self, other: Split) -> None:
        self.reasoning += other.reasoning
        self.content += other.content


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag` (a tag maybe cut off)."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ThinkSplitter:
    """Incremental splitter: `feed(text)` per chunk, then `flush()` once at the end."""

    def __init__(self, *, opened: bool = False) -> None:
        self._state = _State.THINK_START if opened else _State.START
        self._pending = ""
        self._content_sent = False
        self.saw_reasoning = opened

    def feed(self, text: str) -> Split:
        out = Split()
        buffer = self._pending + text
        self._pending = ""
        while buffer:
            if self._state is _State.START:
                stripped = buffer.lstrip()
                if stripped.startswith(OPEN_TAG):
                    buffer = stripped[len(OPEN_TAG) :]
                    self._state = _State.THINK
                    self.saw_reasoning = True
                elif len(buffer) > _MAX_LEADING_SPACE:
                    self._state = _State.CONTENT  # no model pads a think tag this far: it is the answer
                elif not stripped or OPEN_TAG.startswith(stripped):
                    self._pending = buffer  # whitespace, or an opening tag cut off: wait
                    return out
                else:
                    self._state = _State.CONTENT
            elif self._state is _State.THINK_START:
                stripped = buffer.lstrip()
                if stripped.startswith(OPEN_TAG):
                    buffer = stripped[len(OPEN_TAG) :]
                    self._state = _State.THINK
                elif not stripped or OPEN_TAG.startswith(stripped):
                    self._pending = buffer
                    return out
                else:
                    self._state = _State.THINK
            elif self._state is _State.THINK:
                index = buffer.find(CLOSE_TAG)
                if index >= 0:
                    out.reasoning += buffer[:index]
                    buffer = buffer[index + len(CLOSE_TAG) :]
                    self._state = _State.AFTER_CLOSE
                else:
                    keep = _partial_suffix(buffer, CLOSE_TAG)
                    out.reasoning += buffer[: len(buffer) - keep]
                    self._pending = buffer[len(buffer) - keep :]
                    return out
            elif self._state is _State.AFTER_CLOSE:
                stripped = buffer.lstrip()
                if not stripped:
                    return out  # only blank lines so far: dropped
                buffer = stripped
                self._state = _State.CONTENT
            else:  # CONTENT
                index = buffer.find(CLOSE_TAG)
                if index >= 0:
                    before = buffer[:index]
                    if not self._content_sent and not self.saw_reasoning:
                        # `reasoning</think>answer`: the template opened the tag (DeepSeek-R1 form).
                        out.reasoning += before.lstrip()
                        self.saw_reasoning = True
                    else:
                        out.content += before  # already sent as content: only the tag goes
                        self._content_sent = self._content_sent or bool(before.strip())
                    buffer = buffer[index + len(CLOSE_TAG) :]
                    self._state = _State.AFTER_CLOSE
                    continue
                keep = _partial_suffix(buffer, CLOSE_TAG)
                emit = buffer[: len(buffer) - keep]
                if keep and not self._content_sent and not emit.strip():
                    # Only blank space before what may be a closing tag: hold it with the tag.
                    self._pending = buffer
                    return out
                out.content += emit
                self._content_sent = self._content_sent or bool(emit.strip())
                self._pending = buffer[len(buffer) - keep :]
                return out
        return out

    def flush(self) -> Split:
        """What is still held back (a cut-off tag that never completed is ordinary text)."""
        rest, self._pending = self._pending, ""
        if not rest:
            return Split()
        if self._state in (_State.THINK, _State.THINK_START):
            return Split(reasoning=rest.lstrip() if self._state is _State.THINK_START else rest)
        if self._state is _State.AFTER_CLOSE:
            return Split(content=rest.lstrip())
        self._content_sent = True  # includes an answer of nothing but blank space: it is the answer
        return Split(content=rest)


def split_text(text: str, *, opened: bool = False) -> Split:
    """Split a whole completion. Unlike a stream it can look ahead, so `reasoning</think>answer`
    (a closing tag with no opening one) is split even when `opened` is not known."""
    stripped = text.lstrip()
    if opened or (not stripped.startswith(OPEN_TAG) and CLOSE_TAG in text):
        splitter = ThinkSplitter(opened=True)
    else:
        splitter = ThinkSplitter()
    out = splitter.feed(text)
    out.extend(splitter.flush())
    return out


# A string literal in a Jinja template: '…' or "…" (escapes allowed).
_LITERAL = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""")


def template_opens_think(template: str | None) -> bool:
    """Whether a chat template ends the generation prompt with an open `<think>` (DeepSeek-R1 style).

    A heuristic on the template text, not a render (the server does not load tokenizers): some string
    literal after the last `add_generation_prompt` test contains `<think>` without `</think>`. Qwen3's
    template writes `<think>\\n\\n</think>` there only to switch thinking off, which this rejects.
    """
    if not template:
        return False
    index = template.rfind("add_generation_prompt")
    if index < 0:
        return False
    for literal in _LITERAL.findall(template[index:]):
        if OPEN_TAG in literal and CLOSE_TAG not in literal:
            return True
    return False
