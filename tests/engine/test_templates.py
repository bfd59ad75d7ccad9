"""Chat templates: LF token layout, exact prompt/answer split, loss masking, system prompts."""

from __future__ import annotations

from typing import Any

import pytest

from loraforge.engine.chat_templates import TEMPLATE_NAMES, get_template
from loraforge.engine.data.truncation import build_conversation_ids

CONV = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue."},
]


def _enc(tok: Any, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False)


def test_default_matches_lf_layout(tiny_llama_tokenizer: Any) -> None:
    """LF encodes each slot string separately; eos is the eos id; no bos for `default`."""
    tok = tiny_llama_tokenizer
    pairs = get_template("default", tok).encode_pairs(tok, CONV, "Be brief.")
    eos = tok.eos_token_id
    system = [*_enc(tok, "System: Be brief."), eos, *_enc(tok, "\n")]
    first_prompt = [*system, *_enc(tok, "Human: hi"), eos, *_enc(tok, "\nAssistant:")]
    assert pairs[0][0] == first_prompt
    assert pairs[0][1] == [*_enc(tok, "Hello! How can I help?"), eos, *_enc(tok, "\n")]
    assert pairs[1][0] == [*_enc(tok, "Human: Name a colour."), eos, *_enc(tok, "\nAssistant:")]
    assert pairs[1][1] == [*_enc(tok, "Blue."), eos, *_enc(tok, "\n")]
    # and it decodes to exactly what the peer benchmark's jinja template renders
    flat = [t for p, a in pairs for t in p + a]
    rendered = tok.apply_chat_template([{"role": "system", "content": "Be brief."}, *CONV], tokenize=False)
    assert tok.decode(flat) == rendered


def test_multiturn_masking_labels_only_assistant_tokens(tiny_llama_tokenizer: Any) -> None:
    tok = tiny_llama_tokenizer
    pairs = get_template("default", tok).encode_pairs(tok, CONV)
    ids, labels = build_conversation_ids(pairs, cutoff_len=1024)
    labelled = [t for t, lab in zip(ids, labels, strict=True) if lab != -100]
    assert labelled == pairs[0][1] + pairs[1][1]
    assert tok.decode(labelled) == "Hello! How can I help?</s>\nBlue.</s>\n"
    # train_on_prompt labels everything; mask_history only the last answer
    _, all_labels = build_conversation_ids(pairs, cutoff_len=1024, train_on_prompt=True)
    assert all_labels == ids
    ids_h, labels_h = build_conversation_ids(pairs, cutoff_len=1024, mask_history=True)
    assert ids_h == ids
    assert [t for t, lab in zip(ids_h, labels_h, strict=True) if lab != -100] == pairs[1][1]


def test_system_prompt_default_and_override(tiny_qwen_tokenizer: Any) -> None:
    tok = tiny_qwen_tokenizer
    qwen = get_template("qwen", tok)
    prompt, answer = qwen.render_pair_text(tok, CONV[:2])
    assert prompt.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.")
    assert answer == "Hello! How can I help?<|im_end|>\n"
    custom = get_template("qwen", tok, default_system="Answer in French.")
    assert custom.render_pair_text(tok, CONV[:2])[0].startswith(
        "<|im_start|>system\nAnswer in French.<|im_end|>"
    )
    chatml = get_template("chatml", tok)
    assert (
        chatml.render_pair_text(tok, CONV[:2])[0] == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    # a per-example system wins over the default
    assert qwen.render_pair_text(tok, CONV[:2], "Row system.")[0].startswith(
        "<|im_start|>system\nRow system."
    )


@pytest.mark.parametrize("name", [n for n in TEMPLATE_NAMES if n != "auto"])
def test_every_named_template_splits_exactly(name: str, tiny_qwen_tokenizer: Any) -> None:
    tok = tiny_qwen_tokenizer
    tpl = get_template(name, tok)
    pairs = tpl.encode_pairs(tok, CONV, "Sys.")
    assert len(pairs) == 2 and all(p and a for p, a in pairs)
    assert "Blue." in tok.decode(pairs[1][1])
    assert "Name a colour." in tok.decode(pairs[1][0])
    if name == "mistral":  # system text is folded into the first [INST]
        assert "[INST] Sys.\n\nhi[/INST]" in tok.decode(pairs[0][0])


@pytest.mark.parametrize("fixture", ["tiny_qwen_tokenizer", "tiny_llama_tokenizer"])
def test_auto_uses_tokenizer_template(fixture: str, request: pytest.FixtureRequest) -> None:
    tok = request.getfixturevalue(fixture)
    named = "chatml" if tok.eos_token == "<|im_end|>" else "default"
    for system in (None, "Be brief."):
        auto_pairs = get_template("auto", tok).encode_pairs(tok, CONV, system)
        assert auto_pairs == get_template(named, tok).encode_pairs(tok, CONV, system)


def test_auto_without_chat_template_is_explained(tiny_llama_tokenizer: Any) -> None:
    import copy

    tok = copy.deepcopy(tiny_llama_tokenizer)
    tok.chat_template = None
    with pytest.raises(ValueError, match="needs a tokenizer with a chat_template"):
        get_template("auto", tok)


def test_truncation_policies() -> None:
    pairs = [([1] * 10, [2] * 10), ([3] * 10, [4] * 10)]
    ids, _labels = build_conversation_ids(pairs, cutoff_len=30)
    assert len(ids) == 30 and ids[:20] == [1] * 10 + [2] * 10  # right: the end is cut
    ids_l, _ = build_conversation_ids(pairs, cutoff_len=30, truncation="left")
    assert len(ids_l) == 30 and ids_l[-20:] == [3] * 10 + [4] * 10  # left: the start is cut
    assert build_conversation_ids(pairs, cutoff_len=30, truncation="drop") is None
    # LF's budget split: a long answer and a long prompt are cut proportionally
    ids_p, labels_p = build_conversation_ids([([1] * 300, [2] * 100)], cutoff_len=100)
    assert ids_p.count(1) == 75 and ids_p.count(2) == 25
    assert labels_p.count(-100) == 75
