"""The tokenizer as llama.cpp reads it from GGUF metadata (`tokenizer.ggml.*`).

Only byte-level BPE vocabularies are written (`tokenizer.ggml.model = gpt2`), with every id up to the
model's vocab size (ids the tokenizer does not use become `[PAD<id>]`, type UNUSED, as llama.cpp's
converter does), the merges, the special ids, add_bos/add_eos and the chat template.

The pre-tokenizer (how text is split before BPE) is not stored as a regex in GGUF: llama.cpp keeps a
table of known ones and stores the name (`tokenizer.ggml.pre`). Its converter recognises a tokenizer by
hashing the ids it gives for a fixed text. That table only knows published checkpoints, so we
recognise the split itself instead: the tokenizer's pre-tokenizer pipeline is compared with the ones
llama.cpp implements. Anything else is `unknown_tokenizer`: a file with the wrong split would load
and quietly tokenize differently from the model's training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loraforge.engine.export.errors import UnknownTokenizerError

# llama.cpp's pre-tokenizer names, keyed by the Split regex that precedes ByteLevel(use_regex=False).
_QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_LLAMA3_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)
KNOWN_SPLITS: dict[str, str] = {_QWEN2_SPLIT: "qwen2", _LLAMA3_SPLIT: "llama-bpe"}
# ByteLevel(use_regex=True) alone: GPT-2's own split, llama.cpp's "gpt-2".
GPT2_PRE = "gpt-2"

TOKEN_NORMAL, TOKEN_UNUSED, TOKEN_CONTROL, TOKEN_USER_DEFINED = 1, 5, 3, 4


def identify_pre_tokenizer(pre: dict[str, Any] | None) -> str:
    """llama.cpp's name for a `tokenizer.json` pre_tokenizer block; UnknownTokenizerError otherwise."""
    if pre and pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return GPT2_PRE
    steps = pre.get("pretokenizers", []) if pre and pre.get("type") == "Sequence" else []
    if (
        len(steps) == 2
        and steps[0].get("type") == "Split"
        and steps[0].get("behavior") == "Isolated"
        and not steps[0].get("invert", False)
        and steps[1].get("type") == "ByteLevel"
        and not steps[1].get("use_regex", True)
    ):
        regex = (steps[0].get("pattern") or {}).get("Regex")
        if regex in KNOWN_SPLITS:
            return KNOWN_SPLITS[regex]
    raise UnknownTokenizerError(
        "the tokenizer's pre-tokenizer is not one llama.cpp implements "
        f"({json.dumps(pre)[:300]}); the GGUF would split text differently from the model's training",
        suggestion="Export as merged safetensors or ONNX instead; GGUF supports GPT-2, Llama-3 and "
        "Qwen2 style byte-level BPE tokenizers.",
    )


def _backend_json(tokenizer: Any) -> dict[str, Any]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UnknownTokenizerError(
            f"{type(tokenizer).__name__} has no fast (tokenizers) backend; only byte-level BPE is exported"
        )
    return dict(json.loads(backend.to_str()))


def tokenizer_metadata(tokenizer: Any, vocab_size: int) -> dict[str, Any]:
    """Everything `write_tokenizer` writes, as plain values (tested without a writer)."""
    data = _backend_json(tokenizer)
    model = data.get("model") or {}
    byte_level = (data.get("decoder") or {}).get("type") == "ByteLevel"
    if model.get("type") != "BPE" or not byte_level or model.get("byte_fallback"):
        raise UnknownTokenizerError(
            f"only byte-level BPE tokenizers are exported to GGUF, not {model.get('type')!r}"
            + (" with byte fallback" if model.get("byte_fallback") else ""),
        )
    pre = identify_pre_tokenizer(data.get("pre_tokenizer"))
    vocab: dict[str, int] = tokenizer.get_vocab()
    if max(vocab.values(), default=-1) >= vocab_size:
        raise UnknownTokenizerError(f"the tokenizer has ids beyond the model's vocab_size {vocab_size}")
    reverse = {i: t for t, i in vocab.items()}
    added = {t.content: t.special for t in tokenizer.added_tokens_decoder.values()}
    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        token = reverse.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(TOKEN_UNUSED)
        else:
            tokens.append(token)
            types.append(
                (TOKEN_CONTROL if added[token] else TOKEN_USER_DEFINED) if token in added else TOKEN_NORMAL
            )
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    probe = tokenizer("a")["input_ids"]  # what the tokenizer adds on its own decides add_bos/add_eos
    return {
        "pre": pre,
        "tokens": tokens,
        "types": types,
        "merges": merges,
        "bos": tokenizer.bos_token_id,
        "eos": tokenizer.eos_token_id,
        "pad": tokenizer.pad_token_id,
        "add_bos": bool(probe) and tokenizer.bos_token_id is not None and probe[0] == tokenizer.bos_token_id,
        "add_eos": bool(probe) and tokenizer.eos_token_id is not None and probe[-1] == tokenizer.eos_token_id,
        "chat_template": tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None,
    }


def load_tokenizer_metadata(model_dir: Path, vocab_size: int) -> dict[str, Any]:
    from transformers import AutoTokenizer

    return tokenizer_metadata(AutoTokenizer.from_pretrained(str(model_dir)), vocab_size)


def write_tokenizer(writer: Any, meta: dict[str, Any]) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(meta["pre"])
    writer.add_token_list(meta["tokens"])
    writer.add_token_types(meta["types"])
    writer.add_token_merges(meta["merges"])
    if meta["bos"] is not None:
        writer.add_bos_token_id(meta["bos"])
    if meta["eos"] is not None:
        writer.add_eos_token_id(meta["eos"])
    if meta["pad"] is not None:
        writer.add_pad_token_id(meta["pad"])
    writer.add_add_bos_token(meta["add_bos"])
    writer.add_add_eos_token(meta["add_eos"])
    if meta["chat_template"]:
        writer.add_chat_template(meta["chat_template"])
