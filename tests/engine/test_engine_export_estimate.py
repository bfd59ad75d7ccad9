"""The size the platform shows before an export (`services.export.estimate`, through the engine's
rules) against the files the real converters write, on the demo models: full GGUF at F16/Q8_0/Q4_0
(Qwen2 ties its embeddings, Llama does not), a LoRA version exported to GGUF (merged first), the GGUF
LoRA adapter and merged safetensors. Within 15 %: a small model's GGUF is mostly vocabulary, which a
flat allowance once overstated fourfold."""

from __future__ import annotations

from pathlib import Path

import pytest

gguf = pytest.importorskip("gguf")

from test_engine_export_gguf_jobs import _adapter  # noqa: E402

from loraforge.engine.export.gguf_convert import write_gguf  # noqa: E402
from loraforge.engine.export.gguf_lora import write_gguf_lora  # noqa: E402
from loraforge.engine.merge import merge_adapter  # noqa: E402
from loraforge.services.export.estimate import estimate  # noqa: E402

TOLERANCE = 0.15


def _close(guess: int | None, actual: int, what: str) -> None:
    assert guess is not None, what
    assert abs(guess - actual) / actual < TOLERANCE, f"{what}: estimated {guess}, wrote {actual}"


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_estimates_match_the_written_files(
    tmp_path: Path, tiny_qwen_dir: Path, tiny_llama_dir: Path, arch: str
) -> None:
    base = tiny_qwen_dir if arch == "qwen2" else tiny_llama_dir
    for quant in ("f16", "q8_0", "q4_0"):
        path = write_gguf(base, tmp_path / f"model-{quant}.gguf", quant).path
        guess = estimate(base=base, adapter=None, fmt="gguf", quantization=quant).file_bytes
        _close(guess, path.stat().st_size, f"{arch} gguf {quant}")

    adapter = _adapter(base, tmp_path / "lora", target_modules=["q_proj", "v_proj"])
    merged = merge_adapter(adapter, tmp_path / "merged", base_model=base)
    written = sum(p.stat().st_size for p in Path(merged).iterdir() if p.is_file())
    _close(estimate(base=base, adapter=adapter, fmt="merged", quantization=None).file_bytes, written,
           f"{arch} merged")  # fmt: skip
    # a LoRA version exported as a full GGUF is merged in memory first: the base model's size
    path = write_gguf(Path(merged), tmp_path / "merged-q8_0.gguf", "q8_0").path
    guess = estimate(base=base, adapter=adapter, fmt="gguf", quantization="q8_0").file_bytes
    _close(guess, path.stat().st_size, f"{arch} LoRA version as gguf q8_0")
    for quant in ("f32", "f16", "q8_0"):
        target = tmp_path / f"adapter-{quant}.gguf"
        write_gguf_lora(adapter, base, target, quant)
        guess = estimate(base=base, adapter=adapter, fmt="gguf_lora", quantization=quant).file_bytes
        _close(guess, target.stat().st_size, f"{arch} gguf_lora {quant}")
