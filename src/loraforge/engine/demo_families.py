"""The model families the demo builder makes: special tokens, chat template and config per family.

Each family's Jinja `chat_template` renders exactly the layout of one of LLaMA-Factory's named templates
(`lf_template`, in `engine/chat_templates.py`), so a job may name either `template: auto` or the LF name
and train on the same tokens; the tests check that token for token. The generation prompt is part of the
user turn where LF puts it there (`default`, `mistral`, `phi`), so `add_generation_prompt` adds nothing.

Torch-free: configs are built by name through `transformers` when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Arch = Literal["qwen2", "llama", "mistral", "phi3"]
ARCHS: tuple[Arch, ...] = ("qwen2", "llama", "mistral", "phi3")

# ChatML, as Qwen2-Instruct uses it (without Qwen's built-in default system prompt, so a
# conversation without a system message renders exactly what it contains). LF: `chatml`.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# LLaMA-Factory's `default` template token for token (system "System: {c}</s>\n", user
# "Human: {c}</s>\nAssistant:", assistant "{c}</s>\n").
DEFAULT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ 'System: ' + message['content'] + eos_token + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'Human: ' + message['content'] + eos_token + '\nAssistant:' }}"
    "{% elif message['role'] == 'assistant' %}{% generation %}{{ message['content'] + eos_token + '\n' }}"
    "{% endgeneration %}{% endif %}"
    "{% endfor %}"
)

# A system message goes inside the first user turn (LF's Llama2Template), as `{system}\n\n{user}`.
_SYSTEM_IN_FIRST_USER = (
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set system = messages[0]['content'] + '\n\n' %}{% set turns = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set turns = messages %}{% endif %}"
)

# LLaMA-Factory's `mistral`: "<s>[INST] {system\n\n}{user}[/INST] {assistant}</s>".
MISTRAL_TEMPLATE = (
    "{{ bos_token }}" + _SYSTEM_IN_FIRST_USER + "{% for message in turns %}"
    "{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + (system if loop.first else '') + message['content'] + '[/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{% generation %}{{ ' ' + message['content'] + eos_token }}"
    "{% endgeneration %}{% endif %}"
    "{% endfor %}"
)

# LLaMA-Factory's `phi` (Phi-3): "<|user|>\n{c}<|end|>\n<|assistant|>\n" / "{c}<|end|>\n".
PHI3_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '<|end|>\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '<|end|>\n<|assistant|>\n' }}"
    "{% elif message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|end|>\n' }}"
    "{% endgeneration %}{% endif %}"
    "{% endfor %}"
)


@dataclass(frozen=True)
class Family:
    arch: Arch
    special_tokens: tuple[str, ...]  # trained into the vocabulary first, in this order (ids 0, 1, …)
    roles: dict[str, str | None]  # bos_token / eos_token / pad_token
    extra_special: tuple[str, ...]  # more tokens that stay whole (turn markers)
    chat_template: str
    lf_template: str  # the named template with the same layout
    end_of_turn: str  # the token an assistant turn ends with (a generation stops there too)
    template_words: tuple[str, ...] = ()  # the template's plain words, made whole tokens

    def config(self, dims: dict[str, int], common: dict[str, Any]) -> Any:
        """The transformers config of this family at the given size (`common`: vocab and token ids)."""
        import transformers

        kwargs: dict[str, Any] = {**common, **dims}
        heads = dims["num_attention_heads"]
        if self.arch == "qwen2":
            # Qwen2-0.5B-like: grouped-query attention (2 KV heads) and tied embeddings.
            return transformers.Qwen2Config(num_key_value_heads=2, tie_word_embeddings=True, **kwargs)
        if self.arch == "llama":
            return transformers.LlamaConfig(num_key_value_heads=heads, tie_word_embeddings=False, **kwargs)
        kwargs.update(head_dim=dims["hidden_size"] // heads, sliding_window=None, tie_word_embeddings=False)
        if self.arch == "mistral":
            # Mistral-7B-like: grouped-query attention; no sliding window (as from v0.2 on).
            return transformers.MistralConfig(num_key_value_heads=2, **kwargs)
        # Phi-3-mini-like: fused qkv and gate_up projections, full multi-head attention.
        kwargs.pop("head_dim")  # (Phi-3 derives it)
        return transformers.Phi3Config(
            num_key_value_heads=heads,
            original_max_position_embeddings=common["max_position_embeddings"],
            **kwargs,
        )


FAMILIES: dict[str, Family] = {
    "qwen2": Family(
        arch="qwen2",
        special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        roles={"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
        extra_special=("<|im_start|>",),
        chat_template=CHATML_TEMPLATE,
        lf_template="chatml",
        end_of_turn="<|im_end|>",
    ),
    "llama": Family(
        arch="llama",
        special_tokens=("<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"),
        roles={"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"},
        extra_special=("<|im_start|>", "<|im_end|>"),
        chat_template=DEFAULT_TEMPLATE,
        lf_template="default",
        end_of_turn="</s>",
    ),
    "mistral": Family(
        arch="mistral",
        special_tokens=("<unk>", "<s>", "</s>", "<pad>"),
        roles={"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"},
        extra_special=(),
        chat_template=MISTRAL_TEMPLATE,
        lf_template="mistral",
        end_of_turn="</s>",
        template_words=("[INST] ", "[/INST]"),
    ),
    "phi3": Family(
        arch="phi3",
        special_tokens=(
            "<s>",
            "</s>",
            "<pad>",
            "<|endoftext|>",
            "<|system|>",
            "<|user|>",
            "<|assistant|>",
            "<|end|>",
        ),
        roles={"bos_token": "<s>", "eos_token": "<|endoftext|>", "pad_token": "<pad>"},
        extra_special=("<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
        chat_template=PHI3_TEMPLATE,
        lf_template="phi",
        end_of_turn="<|end|>",
    ),
}


def family(arch: str) -> Family:
    try:
        return FAMILIES[arch]
    except KeyError:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}") from None
