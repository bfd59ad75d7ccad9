"""GGUF export of the demo families, read back by independent readers.

Every quantization of the Qwen2 and Llama demo models is written and loaded by transformers' GGUF
loader; its greedy tokens are compared with the source model's (F32/F16/Q8_0 identical). Q8_0 blocks
are checked against ggml's reference formula, the Llama q/k permutation against transformers' reader.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from loraforge.engine.export.errors import DiskFullError, ExportCancelled, UnknownTokenizerError  # noqa: E402
from loraforge.engine.export.gguf_convert import write_gguf  # noqa: E402
from loraforge.engine.export.gguf_names import permute_rows  # noqa: E402
from loraforge.engine.export.verify import EXACT_QUANTS, source_tokens, verify_gguf  # noqa: E402

QUANTS = ("f32", "f16", "bf16", "q8_0", "q4_0")


@pytest.fixture(scope="module")
def expected(tiny_qwen_dir: Path, tiny_llama_dir: Path) -> dict[str, Any]:
    return {"qwen2": source_tokens(tiny_qwen_dir), "llama": source_tokens(tiny_llama_dir)}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, tiny_qwen_dir: Path, tiny_llama_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("gguf")
    for arch, src in (("qwen2", tiny_qwen_dir), ("llama", tiny_llama_dir)):
        for quant in QUANTS:
            write_gguf(src, out / arch / f"model-{quant}.gguf", quant, name=f"demo-{arch}")
    return out


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_every_quant_reads_back_and_generates(
    written: Path, expected: dict[str, Any], arch: str, quant: str
) -> None:
    path = written / arch / f"model-{quant}.gguf"
    result = verify_gguf(path, quant, expected[arch])
    assert result["reader"] == "transformers-gguf"
    assert result["tokens_compared"] >= 16
    assert 0.0 <= result["agreement"] <= 1.0
    if quant in EXACT_QUANTS:
        assert result["identical"] and result["ok"], result
    else:  # lower bits: agreement is reported; the prompt must still tokenize the same
        assert result["ok"], result


def test_metadata_is_what_llama_cpp_reads(written: Path, tiny_llama_dir: Path) -> None:
    reader = gguf.GGUFReader(str(written / "llama" / "model-q8_0.gguf"))
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.ggml.")}
    config = json.loads((tiny_llama_dir / "config.json").read_text())
    assert fields["general.architecture"] == "llama"
    assert fields["llama.block_count"] == config["num_hidden_layers"]
    assert fields["llama.embedding_length"] == config["hidden_size"]
    assert fields["llama.attention.head_count_kv"] == config["num_key_value_heads"]
    assert fields["llama.context_length"] == config["max_position_embeddings"]
    assert fields["llama.rope.freq_base"] == pytest.approx(10000.0)
    assert fields["general.file_type"] == int(gguf.LlamaFileType.MOSTLY_Q8_0)
    assert "Human: " in fields["tokenizer.chat_template"]
    tok = {k: reader.fields[k].contents() for k in ("tokenizer.ggml.model", "tokenizer.ggml.pre")}
    assert tok == {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2"}
    assert reader.fields["tokenizer.ggml.bos_token_id"].contents() == 0
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert types["blk.0.ffn_down.weight"] == gguf.GGMLQuantizationType.F16  # 172 columns: no whole blocks
    qwen = gguf.GGUFReader(str(written / "qwen2" / "model-f16.gguf"))
    assert qwen.fields["tokenizer.ggml.pre"].contents() == "qwen2"
    assert "output.weight" not in {t.name for t in qwen.tensors}  # tied: llama.cpp reuses token_embd


def _ggml_q8_0_reference(x: np.ndarray) -> bytes:
    """ggml's quantize_row_q8_0_ref: per 32 values an fp16 scale amax/127 and int8 round(x/scale)."""
    blocks = x.astype(np.float32).reshape(-1, 32)
    d = np.abs(blocks).max(axis=1, keepdims=True) / 127.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    v = blocks * inv
    q = (np.trunc(v) + np.trunc(2 * (v - np.trunc(v)))).astype(np.int8)  # roundf: half away from zero
    out = bytearray()
    for scale, row in zip(d.astype(np.float16), q, strict=True):
        out += scale.tobytes() + row.tobytes()
    return bytes(out)


def test_q8_0_blocks_equal_the_reference_quantization(written: Path, tiny_llama_dir: Path) -> None:
    from safetensors.numpy import load_file

    source = load_file(str(tiny_llama_dir / "model.safetensors"))
    reader = gguf.GGUFReader(str(written / "llama" / "model-q8_0.gguf"))
    tensors = {t.name: t for t in reader.tensors}
    heads = json.loads((tiny_llama_dir / "config.json").read_text())["num_attention_heads"]
    cases = {
        "blk.0.attn_v.weight": source["model.layers.0.self_attn.v_proj.weight"],
        "blk.1.attn_q.weight": permute_rows(source["model.layers.1.self_attn.q_proj.weight"], heads),
        "output.weight": source["lm_head.weight"],
    }
    for name, original in cases.items():
        data = tensors[name].data.tobytes()
        assert data == gguf.quants.quantize(original, gguf.GGMLQuantizationType.Q8_0).tobytes(), name
        assert data == _ggml_q8_0_reference(original), name


def test_transformers_reader_undoes_the_llama_permutation(written: Path, tiny_llama_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    reader = gguf.GGUFReader(str(written / "llama" / "model-f32.gguf"))
    q = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight")
    from safetensors.numpy import load_file

    source = load_file(str(tiny_llama_dir / "model.safetensors"))
    stored = np.asarray(q.data).reshape(64, 64)
    assert not np.array_equal(stored, source["model.layers.0.self_attn.q_proj.weight"])  # permuted on disk
    back = AutoModelForCausalLM.from_pretrained(
        str(written / "llama"), gguf_file="model-f32.gguf", dtype=torch.float32
    ).state_dict()
    for name, value in source.items():
        assert torch.equal(back[name], torch.from_numpy(value)), name


def test_unknown_tokenizer_is_refused(tmp_path: Path, tiny_llama_dir: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, model)
    tok = json.loads((model / "tokenizer.json").read_text())
    tok["pre_tokenizer"] = {"type": "Whitespace"}
    (model / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(UnknownTokenizerError, match="pre-tokenizer"):
        write_gguf(model, tmp_path / "out" / "m.gguf", "f16")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_disk_full_and_cancel_leave_no_file(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(DiskFullError) as info:
        write_gguf(tiny_qwen_dir, out / "m.gguf", "f32", free_bytes=100_000)
    assert info.value.code == "disk_full"
    assert list(out.iterdir()) == []
    seen: list[int] = []
    with pytest.raises(ExportCancelled):
        write_gguf(
            tiny_qwen_dir,
            out / "m.gguf",
            "f16",
            progress=lambda d, t: seen.append(d),
            stop=lambda: len(seen) >= 3,
        )
    assert seen == [1, 2, 3]
    assert list(out.iterdir()) == []  # the .part file is gone too


def test_mistral_is_written_as_llama_and_reads_back(tmp_path: Path) -> None:
    import os

    from loraforge.engine.demo_model import cached_demo_model

    root = Path(os.environ.get("LORAFORGE_TEST_CACHE", Path(__file__).resolve().parents[2] / ".cache"))
    src = cached_demo_model(root / "demo-models", arch="mistral", size="tiny")
    path = write_gguf(src, tmp_path / "model-q8_0.gguf", "q8_0").path
    assert gguf.GGUFReader(str(path)).fields["general.architecture"].contents() == "llama"
    result = verify_gguf(path, "q8_0", source_tokens(src))
    assert result["identical"], result


@pytest.mark.parametrize("quant", ["f32", "f16", "q8_0", "q4_0"])
def test_size_estimate_is_close_to_the_written_file(written: Path, tiny_qwen_dir: Path, quant: str) -> None:
    from loraforge.engine.export.estimate import estimate

    actual = (written / "qwen2" / f"model-{quant}.gguf").stat().st_size
    guess = estimate(tiny_qwen_dir, "gguf", quant)
    assert abs(guess["file_bytes"] - actual) / actual < 0.1, (guess, actual)
    assert guess["memory_bytes"] > guess["file_bytes"]


@pytest.mark.parametrize("quant", ["f16", "q8_0", "q4_0"])
def test_row_blocks_write_the_same_bytes_as_whole_tensors(
    tmp_path: Path, written: Path, tiny_qwen_dir: Path, quant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory stays bounded for any model because big tensors are converted a block of rows at a time;
    blocks of one row must give byte for byte the file the whole-tensor conversion gave."""
    from loraforge.engine.export import gguf_convert

    monkeypatch.setattr(gguf_convert, "_CHUNK_BYTES", 1)
    blocks = write_gguf(tiny_qwen_dir, tmp_path / f"model-{quant}.gguf", quant, name="demo-qwen2").path
    assert blocks.read_bytes() == (written / "qwen2" / f"model-{quant}.gguf").read_bytes()
