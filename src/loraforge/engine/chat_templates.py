"""Chat templates: turn a conversation into (prompt_ids, answer_ids) pairs per turn.

Named templates follow LLaMA-Factory's layouts (same names, same text, same token boundaries) so a
job written for LF trains on the same tokens. Each role has a list of *slots*: text with a
`{content}` placeholder, or the markers BOS / EOS for the tokenizer's special tokens. Like LF, every
message is tokenised on its own (and every slot string on its own), so BPE never merges across a
turn boundary and the prompt/answer split is exact.

`auto` uses the tokenizer's own Jinja `chat_template`: we render growing prefixes of the
conversation and tokenise the difference for each message, which gives the same exact split.

Joining the pairs into one training row (LF's truncation and label masking) is
`loraforge.engine.data.truncation`.

Torch-free: only a tokenizer object is needed, passed in by the caller.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# LLaMA-Factory's names for the families we support, plus `auto` (the tokenizer's own template).
TEMPLATE_NAMES: tuple[str, ...] = (
    "auto",
    "default",
    "empty",
    "qwen",
    "chatml",
    "llama3",
    "deepseek3",
    "mistral",
    "phi",
)

BOS = "\x00<bos>"  # slot markers; never valid text, so they cannot clash with content
EOS = "\x00<eos>"

Message = dict[str, str]
Pair = tuple[list[int], list[int]]

# LF roles: function_call is an assistant turn, observation (tool output) a user turn.
_USER_ROLES = {"user", "human", "observation", "tool"}
_ASSISTANT_ROLES = {"assistant", "gpt", "function_call"}


class ChatTemplate(Protocol):
    """What the data code needs from a template."""

    @property
    def name(self) -> str:
        """The template's name (an LF name or `auto`)."""
        ...

    def encode_pairs(
        self, tokenizer: Any, messages: Sequence[Message], system: str | None = None
    ) -> list[Pair]:
        """Token ids per (user turn, assistant turn) pair; messages alternate user/assistant."""
        ...

    def render_pair_text(
        self, tokenizer: Any, messages: Sequence[Message], system: str | None = None
    ) -> tuple[str, str]:
        """(prompt text up to the generation point, final assistant turn text) — for DPO rows."""
        ...

    def stop_token(self, tokenizer: Any) -> str | None:
        """The token that ends an assistant turn (to check the tokenizer knows it)."""
        ...


@dataclass(frozen=True)
class SlotTemplate:
    """A template described by slots per role, LLaMA-Factory style."""

    name: str
    user: tuple[str, ...]
    assistant: tuple[str, ...]
    system: tuple[str, ...] = ("{content}",)
    prefix: tuple[str, ...] = ()
    separator: tuple[str, ...] = ()
    default_system: str | None = None
    # Llama-2 / Mistral style: the system text goes inside the first user turn.
    system_in_user: bool = False
    stop_words: tuple[str, ...] = field(default_factory=tuple)

    # -- rendering to slot elements -----------------------------------------------------------
    def _message_elements(self, index: int, message: Message, system: str | None) -> list[str]:
        elements: list[str] = []
        role = _role_group(message["role"])
        if index == 0:
            elements += self.prefix
            if system and not self.system_in_user:
                elements += _fill(self.system, system)
        elif index % 2 == 0:
            elements += self.separator
        content = message["content"]
        if role == "user":
            if index == 0 and system and self.system_in_user:
                content = "".join(_fill(self.system, system)) + content
            elements += _fill(self.user, content)
        else:
            elements += _fill(self.assistant, content)
        return elements

    def encode_pairs(
        self, tokenizer: Any, messages: Sequence[Message], system: str | None = None
    ) -> list[Pair]:
        _check_alternation(messages)
        system = system if system is not None else self.default_system
        encoded = [
            _encode_elements(tokenizer, self._message_elements(i, m, system)) for i, m in enumerate(messages)
        ]
        return [(encoded[i], encoded[i + 1]) for i in range(0, len(encoded) - 1, 2)]

    def render_pair_text(
        self, tokenizer: Any, messages: Sequence[Message], system: str | None = None
    ) -> tuple[str, str]:
        _check_alternation(messages)
        system = system if system is not None else self.default_system
        texts = [
            _elements_text(tokenizer, self._message_elements(i, m, system)) for i, m in enumerate(messages)
        ]
        return "".join(texts[:-1]), texts[-1]

    def stop_token(self, tokenizer: Any) -> str | None:
        if self.stop_words:
            return self.stop_words[0]
        return getattr(tokenizer, "eos_token", None)


class AutoTemplate:
    """The tokenizer's own Jinja chat template, split into turns by rendering growing prefixes."""

    name = "auto"

    def __init__(self, tokenizer: Any, default_system: str | None = None) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise TemplateError(
                "template: auto needs a tokenizer with a chat_template, and this one has none; "
                "set template to one of: " + ", ".join(n for n in TEMPLATE_NAMES if n != "auto")
            )
        self._tokenizer = tokenizer
        self.default_system = default_system

    def _render(self, messages: Sequence[Message], generation: bool) -> str:
        text = self._tokenizer.apply_chat_template(
            [{"role": _canonical_role(m["role"]), "content": m["content"]} for m in messages],
            tokenize=False,
            add_generation_prompt=generation,
        )
        return str(text)

    def _parts(self, messages: Sequence[Message], system: str | None) -> list[str]:
        _check_alternation(messages)
        system = system if system is not None else self.default_system
        head: list[Message] = [{"role": "system", "content": system}] if system else []
        parts: list[str] = []
        previous = ""  # the system text (if any) belongs to the first prompt
        for i in range(len(messages)):
            is_user = i % 2 == 0
            # a user turn ends where the model starts answering: include the generation prompt
            current = self._render(head + list(messages[: i + 1]), generation=is_user)
            if not current.startswith(previous):
                raise TemplateError(
                    "the tokenizer's chat_template does not render conversations as growing prefixes, "
                    "so turns cannot be split exactly; use a named template instead"
                )
            parts.append(current[len(previous) :])
            previous = current
        return parts

    def encode_pairs(
        self, tokenizer: Any, messages: Sequence[Message], system: str | None = None
    ) -> list[Pair]:
        parts = self._parts(messages, system)
        ids = [_encode_text(tokenizer, p) for p in parts]
        return [(ids[i], ids[i + 1]) for i in range(0, len(ids) - 1, 2)]

    def render_pair_text(
        self, tokenizer: Any, messages: Sequence[Message], system: str | None = None
    ) -> tuple[str, str]:
        parts = self._parts(messages, system)
        return "".join(parts[:-1]), parts[-1]

    def stop_token(self, tokenizer: Any) -> str | None:
        return getattr(tokenizer, "eos_token", None)


class TemplateError(ValueError):
    """A template cannot be used with this tokenizer or conversation."""


# ---- the named templates (LLaMA-Factory layouts) -------------------------------------------------
_CHATML_USER = ("<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n",)
_CHATML_ASSISTANT = ("{content}<|im_end|>\n",)
_CHATML_SYSTEM = ("<|im_start|>system\n{content}<|im_end|>\n",)

NAMED_TEMPLATES: dict[str, SlotTemplate] = {
    # "Human: {c}</s>\nAssistant:" / "{c}</s>\n" / "System: {c}</s>\n"
    "default": SlotTemplate(
        name="default",
        user=("Human: {content}", EOS, "\nAssistant:"),
        assistant=("{content}", EOS, "\n"),
        system=("System: {content}", EOS, "\n"),
    ),
    # plain concatenation, no special tokens at all
    "empty": SlotTemplate(name="empty", user=("{content}",), assistant=("{content}",)),
    "qwen": SlotTemplate(
        name="qwen",
        user=_CHATML_USER,
        assistant=_CHATML_ASSISTANT,
        system=_CHATML_SYSTEM,
        default_system="You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        stop_words=("<|im_end|>",),
    ),
    "chatml": SlotTemplate(
        name="chatml",
        user=_CHATML_USER,
        assistant=_CHATML_ASSISTANT,
        system=_CHATML_SYSTEM,
        stop_words=("<|im_end|>", "<|im_start|>"),
    ),
    "llama3": SlotTemplate(
        name="llama3",
        user=(
            "<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
        assistant=("{content}<|eot_id|>",),
        system=("<|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>",),
        prefix=(BOS,),
        stop_words=("<|eot_id|>", "<|eom_id|>"),
    ),
    "deepseek3": SlotTemplate(
        name="deepseek3",
        user=("<｜User｜>{content}<｜Assistant｜>",),
        assistant=("{content}", EOS),
        prefix=(BOS,),
    ),
    "mistral": SlotTemplate(
        name="mistral",
        user=("[INST] {content}[/INST]",),
        assistant=(" {content}", EOS),
        system=("{content}\n\n",),
        prefix=(BOS,),
        system_in_user=True,
    ),
    # Phi-3: the turn markers are special tokens; `<|end|>` ends every turn (LF replaces the eos with it)
    "phi": SlotTemplate(
        name="phi",
        user=("<|user|>\n{content}<|end|>\n<|assistant|>\n",),
        assistant=("{content}<|end|>\n",),
        system=("<|system|>\n{content}<|end|>\n",),
        stop_words=("<|end|>",),
    ),
}


def get_template(name: str, tokenizer: Any, default_system: str | None = None) -> ChatTemplate:
    """The template called `name` (an LF name or `auto`), with an optional default system prompt."""
    if name == "auto":
        return AutoTemplate(tokenizer, default_system)
    try:
        base = NAMED_TEMPLATES[name]
    except KeyError:
        raise TemplateError(f"unknown template {name!r}; supported: {', '.join(TEMPLATE_NAMES)}") from None
    if default_system is not None:
        return SlotTemplate(**{**base.__dict__, "default_system": default_system})
    return base


def missing_special_tokens(template: ChatTemplate, tokenizer: Any) -> list[str]:
    """Stop words the template needs that the tokenizer would split into pieces.

    LLaMA-Factory adds them to the tokenizer (and resizes the embeddings); we report them so the
    runtime can decide to do the same.
    """
    words = getattr(template, "stop_words", ()) or ()
    vocab = tokenizer.get_vocab()
    return [w for w in words if w not in vocab]


# ---- helpers -------------------------------------------------------------------------------------
def _role_group(role: str) -> str:
    if role in _USER_ROLES:
        return "user"
    if role in _ASSISTANT_ROLES:
        return "assistant"
    raise TemplateError(f"unsupported role {role!r} inside a conversation")


def _canonical_role(role: str) -> str:
    if role == "system":
        return "system"
    return _role_group(role)


def _check_alternation(messages: Sequence[Message]) -> None:
    for i, m in enumerate(messages):
        want = "user" if i % 2 == 0 else "assistant"
        if _role_group(m["role"]) != want:
            raise TemplateError(f"message {i} has role {m['role']!r}; conversations alternate user/assistant")


def _fill(slots: Sequence[str], content: str) -> list[str]:
    return [s.replace("{content}", content) if s not in (BOS, EOS) else s for s in slots]


def _elements_text(tokenizer: Any, elements: Sequence[str]) -> str:
    """Elements as text, BOS/EOS markers replaced by the tokenizer's literal tokens (for DPO rows)."""
    out = []
    for el in elements:
        if el == BOS:
            out.append(getattr(tokenizer, "bos_token", None) or "")
        elif el == EOS:
            out.append(tokenizer.eos_token or "")
        else:
            out.append(el)
    return "".join(out)


def _encode_elements(tokenizer: Any, elements: Sequence[str]) -> list[int]:
    ids: list[int] = []
    for el in elements:
        if el == BOS:
            if tokenizer.bos_token_id is not None:  # LF: no bos token, no bos
                ids.append(tokenizer.bos_token_id)
        elif el == EOS:
            ids.append(tokenizer.eos_token_id)
        elif el:
            ids += _encode_text(tokenizer, el)
    return ids


def _encode_text(tokenizer: Any, text: str) -> list[int]:
    if not text:
        return []
    return _cached_encoder(tokenizer)(text)


@functools.lru_cache(maxsize=8)
def _cached_encoder(tokenizer: Any) -> Any:
    """A memoised encoder per tokenizer: template words ("\\nAssistant:") repeat in every row."""

    @functools.lru_cache(maxsize=4096)
    def encode_short(text: str) -> tuple[int, ...]:
        return tuple(tokenizer.encode(text, add_special_tokens=False))

    def encode(text: str) -> list[int]:
        if len(text) <= 64:
            return list(encode_short(text))
        return list(tokenizer.encode(text, add_special_tokens=False))

    return encode
