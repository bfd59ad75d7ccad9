"""Verify a GGUF LoRA adapter: read it back with gguf-py's GGUFReader (not our writer) and check that
every LoRA A/B of the PEFT adapter is there, under llama.cpp's name, with its values (q/k B rows
un-permuted) within the rounding of the chosen type.

A LoRA adapter cannot generate on its own, so no tokens are compared: llama.cpp's own adapter
loader (`llama-cli --lora`) would need the base model as GGUF too, which this check does not write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loraforge.engine.export.errors import VerificationFailedError

# Largest |error| / max|value| accepted per type (Q8_0: half a step of 1/127 of the block max).
_TOLERANCE = {"f32": 0.0, "f16": 1e-3, "q8_0": 1e-2}


def read_adapter_tensors(gguf_path: Path) -> dict[str, Any]:
    """GGUF name -> float32 array in numpy (row-major, PyTorch) order."""
    import gguf
    import numpy as np

    try:
        reader = gguf.GGUFReader(str(gguf_path))
    except Exception as exc:
        raise VerificationFailedError(f"gguf-py could not read {gguf_path.name}: {exc}") from exc
    fields = {k: reader.fields[k].contents() for k in ("general.type", "adapter.type") if k in reader.fields}
    if fields != {"general.type": "adapter", "adapter.type": "lora"}:
        raise VerificationFailedError(f"{gguf_path.name} is not marked as a LoRA adapter ({fields})")
    out: dict[str, Any] = {}
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        out[t.name] = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(
            shape
        )
    return out


def verify_gguf_lora(gguf_path: Path, adapter_dir: Path, base_dir: Path, quant: str) -> dict[str, Any]:
    import numpy as np
    from safetensors import safe_open

    from loraforge.engine.export.gguf_lora import pair_keys
    from loraforge.engine.export.gguf_names import NameMapper, qk_heads, read_model_info, unpermute_rows

    info = read_model_info(base_dir)
    names = NameMapper(info)
    got = read_adapter_tensors(gguf_path)
    tolerance = _TOLERANCE[quant]
    checked = matched = exact = 0
    problems: list[str] = []
    with safe_open(str(adapter_dir / "adapter_model.safetensors"), framework="pt") as f:
        pairs = pair_keys(list(f.keys()))
        for p in pairs:
            gname = names.gguf_name(p.base_name)
            for suffix, key in ((".lora_a", p.a_key), (".lora_b", p.b_key)):
                checked += 1
                want = f.get_tensor(key).float().numpy()
                have = got.get(gname + suffix)
                if have is None or have.shape != want.shape:
                    problems.append(
                        f"{gname + suffix}: missing or shape {None if have is None else have.shape}"
                    )
                    continue
                heads = qk_heads(info, p.base_name) if suffix == ".lora_b" else None
                if heads is not None:
                    have = unpermute_rows(have, heads)
                scale = float(np.abs(want).max()) or 1.0
                err = float(np.abs(have - want).max()) / scale
                exact += int(err == 0.0)
                if err <= tolerance or (quant == "q8_0" and err <= _TOLERANCE["f16"]):
                    matched += 1
                else:
                    problems.append(f"{gname + suffix}: relative error {err:.2e}")
    extra = sorted(
        set(got) - {names.gguf_name(p.base_name) + s for p in pairs for s in (".lora_a", ".lora_b")}
    )
    if extra:
        problems.append(f"unexpected tensors {extra[:3]}")
    ok = not problems and matched == checked
    return {
        "ok": ok,
        "reader": "gguf-py GGUFReader",
        "prompt": "",
        "tokens_compared": 0,
        "agreement": round(matched / checked, 4) if checked else 0.0,
        "identical": exact == checked and not extra,
        "detail": f"{matched}/{checked} LoRA tensors match within {quant} rounding"
        + (f"; {'; '.join(problems[:3])}" if problems else ""),
    }
