"""GGUF export rules that need no model: tensor types, the Llama permutation, the pre-tokenizer
table, the disk check and the export spec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from loraforge.engine.export.errors import (  # noqa: E402
    DiskFullError,
    ExportError,
    QuantizationUnavailableError,
    UnknownTokenizerError,
)
from loraforge.engine.export.gguf_convert import check_disk, choose_qtype, tensor_nbytes  # noqa: E402
from loraforge.engine.export.gguf_names import permute_rows, unpermute_rows  # noqa: E402
from loraforge.engine.export.gguf_tokenizer import (  # noqa: E402
    _LLAMA3_SPLIT,
    _QWEN2_SPLIT,
    identify_pre_tokenizer,
)
from loraforge.engine.export.spec import parse_export_spec  # noqa: E402

QT = gguf.GGMLQuantizationType


def test_norms_and_vectors_stay_f32_and_ragged_rows_fall_back_to_f16() -> None:
    assert choose_qtype("blk.0.attn_norm.weight", (64,), "q8_0", is_output=False) == QT.F32
    assert choose_qtype("blk.0.attn_q.bias", (64,), "f16", is_output=False) == QT.F32
    assert choose_qtype("blk.0.attn_q.weight", (64, 64), "q8_0", is_output=False) == QT.Q8_0
    assert choose_qtype("blk.0.attn_q.weight", (64, 64), "bf16", is_output=False) == QT.BF16
    # 172 columns do not split into 32-wide blocks: llama.cpp's converter writes F16 then
    assert choose_qtype("blk.0.ffn_down.weight", (64, 172), "q8_0", is_output=False) == QT.F16
    assert choose_qtype("blk.0.ffn_down.weight", (64, 172), "f32", is_output=False) == QT.F32
    # Q4_0 keeps the output projection at 8 bits
    assert choose_qtype("output.weight", (2048, 64), "q4_0", is_output=True) == QT.Q8_0
    assert choose_qtype("blk.0.attn_q.weight", (64, 64), "q4_0", is_output=False) == QT.Q4_0


def test_tensor_sizes_follow_the_block_layout() -> None:
    assert tensor_nbytes((64, 64), QT.F32) == 64 * 64 * 4
    assert tensor_nbytes((64, 64), QT.Q8_0) == 64 * 64 // 32 * 34
    assert tensor_nbytes((64, 64), QT.Q4_0) == 64 * 64 // 32 * 18
    data = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    assert gguf.quants.quantize(data, QT.Q8_0).nbytes == tensor_nbytes((64, 64), QT.Q8_0)


@pytest.mark.parametrize(("rows", "heads"), [(64, 4), (32, 2), (128, 8)])
def test_llama_permutation_round_trips(rows: int, heads: int) -> None:
    w = np.random.default_rng(rows).standard_normal((rows, 48)).astype(np.float32)
    permuted = permute_rows(w, heads)
    assert not np.array_equal(permuted, w)
    assert np.array_equal(unpermute_rows(permuted, heads), w)
    # rows only: a LoRA B permuted alone gives the permuted product
    a = np.random.default_rng(1).standard_normal((8, 48)).astype(np.float32)
    b = np.random.default_rng(2).standard_normal((rows, 8)).astype(np.float32)
    assert np.allclose(permute_rows(b, heads) @ a, permute_rows(b @ a, heads))


def _split(regex: str) -> dict[str, object]:
    return {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        ],
    }


def test_pre_tokenizers_are_named_as_llama_cpp_names_them() -> None:
    assert (
        identify_pre_tokenizer({"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}) == "gpt-2"
    )
    assert identify_pre_tokenizer(_split(_QWEN2_SPLIT)) == "qwen2"
    assert identify_pre_tokenizer(_split(_LLAMA3_SPLIT)) == "llama-bpe"


@pytest.mark.parametrize(
    "pre",
    [
        _split(r"\s+|\w+"),  # a split llama.cpp has no implementation for
        {"type": "Whitespace"},
        {"type": "Metaspace", "replacement": "▁"},
        None,
    ],
)
def test_an_unknown_pre_tokenizer_is_a_clear_error(pre: dict[str, object] | None) -> None:
    with pytest.raises(UnknownTokenizerError) as info:
        identify_pre_tokenizer(pre)
    assert info.value.code == "unknown_tokenizer"


def test_disk_check_uses_the_injected_limit(tmp_path: Path) -> None:
    check_disk(tmp_path, 1000, free_bytes=2000)
    with pytest.raises(DiskFullError) as info:
        check_disk(tmp_path, 10_000, free_bytes=2000)
    assert info.value.code == "disk_full"
    assert info.value.details["needed_bytes"] == 10_000


def test_export_spec_validation() -> None:
    spec = parse_export_spec({"stage": "export", "export": {"model_name_or_path": "/m", "format": "gguf"}})
    assert spec.quantization == "q8_0" and spec.verify and spec.template == "auto"
    bad = [
        ({"model_name_or_path": "/m", "format": "zip"}, "format"),
        ({"format": "gguf"}, "model_name_or_path"),
        ({"model_name_or_path": "/m", "format": "gguf", "quantization": "q3"}, "quantization"),
        ({"model_name_or_path": "/m", "format": "gguf_lora"}, "adapter_name_or_path"),
        (
            {
                "model_name_or_path": "/m",
                "format": "merged",
                "adapter_name_or_path": "/a",
                "quantization": "q8_0",
            },
            "quantization",
        ),
        ({"model_name_or_path": "/m", "format": "gguf", "verify": "yes"}, "verify"),
    ]
    for block, field in bad:
        with pytest.raises(ExportError) as info:
            parse_export_spec({"export": block})
        assert info.value.code == "invalid_input" and info.value.details.get("field") == field, block


def test_k_quants_without_llama_cpp_are_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from loraforge.engine.export import kquants

    monkeypatch.setattr(kquants, "available", lambda: (False, "install the gguf extra"))
    with pytest.raises(QuantizationUnavailableError) as info:
        parse_export_spec(
            {"export": {"model_name_or_path": "/m", "format": "gguf", "quantization": "q4_k_m"}}
        )
    assert info.value.code == "quantization_unavailable"
