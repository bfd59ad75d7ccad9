"""Full-model GGUF writer: a Hugging Face folder (safetensors) -> one `.gguf` file.

Memory: tensors are read one at a time from the safetensors files (memory-mapped), converted and
appended to the output, so peak memory is about the largest tensor, never the model. GGUFWriter
is driven in its streaming order: header, metadata and the table of tensor infos first (sizes are
known from shapes alone), then each tensor's data.

Types follow llama.cpp: 1-D tensors and norms stay F32; F16/BF16/Q8_0/Q4_0 through gguf-py's
quantizers (Q8_0 bit-exact with llama.cpp's C code); a matrix whose rows do not split into whole
blocks falls back to F16, as llama.cpp's converter does. Q4_0 keeps the output projection (or the
tied embedding that serves as it) at Q8_0: llama-quantize also keeps it above Q4 (its Q6_K, which
needs llama.cpp's K-quantizer, not available in Python).

The file is written as `<name>.part` and renamed when complete, so a cancelled or failed export
never leaves a file that looks whole.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraforge.engine.export.errors import DiskFullError, ExportCancelled, ExportError
from loraforge.engine.export.gguf_names import (
    ModelInfo,
    NameMapper,
    qk_heads,
    read_model_info,
    write_hparams,
)

# quantization name -> (GGMLQuantizationType name, LlamaFileType name)
GGUF_QUANTS: dict[str, tuple[str, str]] = {
    "f32": ("F32", "ALL_F32"),
    "f16": ("F16", "MOSTLY_F16"),
    "bf16": ("BF16", "MOSTLY_BF16"),
    "q8_0": ("Q8_0", "MOSTLY_Q8_0"),
    "q4_0": ("Q4_0", "MOSTLY_Q4_0"),
}
# Room for the header, metadata and alignment beyond the tensor data, besides the vocabulary.
_HEADER_MARGIN = 1 << 20
# Largest block of rows converted at once (as float32): bounds memory for any model size.
_CHUNK_BYTES = 64 << 20

Progress = Callable[[int, int], None]
Stop = Callable[[], bool]


@dataclass(frozen=True)
class TensorPlan:
    hf_name: str
    gguf_name: str
    file: Path
    shape: tuple[int, ...]
    qtype: Any  # gguf.GGMLQuantizationType
    heads: int | None  # permute rows over this many heads (Llama q/k)

    @property
    def nbytes(self) -> int:
        return tensor_nbytes(self.shape, self.qtype)


def tensor_nbytes(shape: tuple[int, ...], qtype: Any) -> int:
    import gguf

    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


def safetensors_files(model_dir: Path) -> list[Path]:
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [model_dir / n for n in names]
    single = model_dir / "model.safetensors"
    if single.is_file():
        return [single]
    raise ExportError(f"{str(model_dir)!r} has no safetensors weights (model.safetensors or an index)")


def choose_qtype(gguf_name: str, shape: tuple[int, ...], quant: str, *, is_output: bool) -> Any:
    """The GGML type of one tensor in a `quant` export (llama.cpp's rules, see the module doc)."""
    import gguf

    qt = gguf.GGMLQuantizationType
    if len(shape) <= 1 or gguf_name.endswith("_norm.weight"):
        return qt.F32
    wanted = qt[GGUF_QUANTS[quant][0]]
    if wanted == qt.Q4_0 and is_output:
        wanted = qt.Q8_0
    block, _ = gguf.GGML_QUANT_SIZES[wanted]
    if shape[-1] % block:
        return qt.F16
    return wanted


def plan_tensors(model_dir: Path, info: ModelInfo, quant: str) -> list[TensorPlan]:
    """Every tensor's GGUF name, shape and type, from the safetensors headers only."""
    from safetensors import safe_open

    names = NameMapper(info)
    plans: list[TensorPlan] = []
    for file in safetensors_files(model_dir):
        with safe_open(str(file), framework="pt") as f:
            for hf_name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                if names.skip(hf_name):
                    continue
                shape = tuple(int(d) for d in f.get_slice(hf_name).get_shape())
                gname = names.gguf_name(hf_name)
                is_output = gname == "output.weight" or (
                    info.tied_embeddings and gname == "token_embd.weight"
                )
                qtype = choose_qtype(gname, shape, quant, is_output=is_output)
                plans.append(TensorPlan(hf_name, gname, file, shape, qtype, qk_heads(info, hf_name)))
    return plans


def check_disk(target_dir: Path, needed: int, free_bytes: int | None = None) -> None:
    """DiskFullError unless `needed` bytes fit; `free_bytes` overrides what the disk reports (tests)."""
    free = shutil.disk_usage(target_dir).free if free_bytes is None else free_bytes
    if needed > free:
        raise DiskFullError(
            f"the export needs {needed / 2**20:.1f} MiB but only {free / 2**20:.1f} MiB are free "
            f"in {str(target_dir)!r}",
            suggestion="Free some space or choose a smaller quantization.",
            needed_bytes=needed,
            free_bytes=free,
        )


def _as_input(t: Any) -> Any:
    """A torch tensor as numpy in llama.cpp's input dtype: F16/F32 kept, anything else (bf16) to F32."""
    import torch

    if t.dtype not in (torch.float16, torch.float32):
        t = t.to(torch.float32)
    return t.numpy()


def load_tensor(handle: Any, plan: TensorPlan) -> Any:
    """One whole tensor as numpy in llama.cpp's input dtype, permuted (Llama q/k)."""
    from loraforge.engine.export.gguf_names import permute_rows

    data = _as_input(handle.get_tensor(plan.hf_name))
    if plan.heads is not None:
        data = permute_rows(data, plan.heads)
    return data


def tensor_chunks(handle: Any, plan: TensorPlan) -> Iterator[Any]:
    """The tensor in blocks of whole rows (at most ~_CHUNK_BYTES as float32), so memory stays bounded
    whatever the model's size: F16/BF16/Q8_0/Q4_0 are computed row by row, so the bytes are the same as
    converting it whole. Permuted q/k matrices mix rows across a head and come whole (hidden² at most)."""
    rows = plan.shape[0] if len(plan.shape) == 2 else 0
    per_row = 4 * (plan.shape[1] if rows else 0)
    if plan.heads is not None or not rows or rows * per_row <= _CHUNK_BYTES:
        yield load_tensor(handle, plan)
        return
    step = max(1, _CHUNK_BYTES // per_row)
    sliced = handle.get_slice(plan.hf_name)
    for start in range(0, rows, step):
        yield _as_input(sliced[start : start + step])


def _write_chunks(writer: Any, chunks: Iterator[Any], qtype: Any, nbytes: int) -> None:
    """GGUFWriter.write_tensor_data for a tensor that arrives in row blocks: the same alignment padding
    before and after, the bytes written as each block is quantized (gguf 0.19's writer state)."""
    import gguf

    fout = next(f for f, tensors in zip(writer.fout, writer.tensors, strict=True) if tensors)
    index = writer.fout.index(fout)
    info = writer.tensors[index].pop(next(iter(writer.tensors[index])))
    writer.write_padding(fout, fout.tell())
    written = 0
    for chunk in chunks:
        data = gguf.quants.quantize(chunk, qtype)
        data.tofile(fout)
        written += data.nbytes
        del data, chunk
    if written != info.nbytes or written != nbytes:
        raise ExportError(f"wrote {written} bytes for a tensor of {info.nbytes}")
    writer.write_padding(fout, written)
    writer.state = gguf.gguf_writer.WriterState.WEIGHTS


@dataclass(frozen=True)
class ConvertResult:
    path: Path
    tensors: int
    arch: str
    size: int


def write_gguf(
    model_dir: Path,
    out_path: Path,
    quant: str,
    *,
    name: str = "model",
    progress: Progress | None = None,
    stop: Stop | None = None,
    free_bytes: int | None = None,
) -> ConvertResult:
    """Convert MODEL_DIR into OUT_PATH at `quant` (a GGUF_QUANTS key)."""
    import gguf
    from safetensors import safe_open

    from loraforge.engine.export.gguf_tokenizer import load_tokenizer_metadata, write_tokenizer

    if quant not in GGUF_QUANTS:
        raise ExportError(f"quantization must be one of {', '.join(GGUF_QUANTS)}, got {quant!r}")
    info = read_model_info(model_dir)
    vocab_size = int(info.config["vocab_size"])
    tok = load_tokenizer_metadata(model_dir, vocab_size)
    plans = plan_tensors(model_dir, info, quant)
    vocab_bytes = sum(len(t) + 12 for t in tok["tokens"]) + sum(len(m) + 8 for m in tok["merges"])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    check_disk(out_path.parent, sum(p.nbytes + 32 for p in plans) + vocab_bytes + _HEADER_MARGIN, free_bytes)

    writer = gguf.GGUFWriter(None, info.arch)
    write_hparams(writer, info, name, vocab_size)
    writer.add_file_type(int(gguf.LlamaFileType[GGUF_QUANTS[quant][1]]))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    write_tokenizer(writer, tok)
    import numpy as np

    for p in plans:
        writer.add_tensor_info(p.gguf_name, p.shape, np.dtype(np.float32), p.nbytes, raw_dtype=p.qtype)

    part = out_path.with_name(out_path.name + ".part")
    try:
        writer.write_header_to_file(part)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for i, p in enumerate(plans):
            if stop is not None and stop():
                raise ExportCancelled()
            # Opened per tensor: a handle kept open keeps the pages it read mapped, and the whole
            # safetensors file would end up counted in the process's memory.
            with safe_open(str(p.file), framework="pt") as handle:
                _write_chunks(writer, tensor_chunks(handle, p), p.qtype, p.nbytes)
            if progress is not None:
                progress(i + 1, len(plans))
        writer.close()
        part.replace(out_path)
    except BaseException:
        writer.close()
        part.unlink(missing_ok=True)
        raise
    return ConvertResult(path=out_path, tensors=len(plans), arch=info.arch, size=out_path.stat().st_size)
