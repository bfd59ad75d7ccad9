"""The demo model builder: loadable folders, faithful tokenizers, deterministic output."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from loraforge.engine.demo_model import build_demo_model


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


def test_tiny_qwen_loads_with_chatml(tiny_qwen_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen_dir)
    assert model.config.model_type == "qwen2"
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert tok.convert_tokens_to_ids("<|im_start|>") != tok.unk_token_id
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    # special tokens stay single ids, text round-trips (incl. Chinese)
    ids = tok("<|im_start|>user\n你好, world<|im_end|>", add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert tok.decode(ids) == "<|im_start|>user\n你好, world<|im_end|>"
    with torch.no_grad():
        out = model(torch.tensor([ids]))
    assert out.logits.shape == (1, len(ids), model.config.vocab_size)


def test_tiny_llama_uses_lf_default_layout(tiny_llama_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    assert model.config.model_type == "llama"
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    assert tok.apply_chat_template(msgs, tokenize=False) == (
        "System: Be brief.</s>\nHuman: hi</s>\nAssistant:hello</s>\n"
    )
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<s>", "</s>", "<pad>")


def test_small_llama_matches_peer_bench_shape(small_llama_dir: Path) -> None:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(small_llama_dir)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size) == (
        256,
        4,
        4,
        688,
    )
    assert cfg.vocab_size == 8192


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_build_is_deterministic(tmp_path: Path, arch: str) -> None:
    a = build_demo_model(tmp_path / "a", arch=arch, size="tiny", seed=3)  # type: ignore[arg-type]
    b = build_demo_model(tmp_path / "b", arch=arch, size="tiny", seed=3)  # type: ignore[arg-type]
    c = build_demo_model(tmp_path / "c", arch=arch, size="tiny", seed=4)  # type: ignore[arg-type]
    assert _digest(a) == _digest(b)
    assert _digest(a)["model.safetensors"] != _digest(c)["model.safetensors"]
    assert _digest(a)["tokenizer.json"] == _digest(c)["tokenizer.json"]


def test_rejects_unknown_arch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="arch"):
        build_demo_model(tmp_path, arch="gpt2")  # type: ignore[arg-type]
