"""GGUF K-quants (Q4_K_M, Q5_K_M, Q6_K) through llama.cpp's own quantizer.

gguf-py has no K-quant encoder (it raises NotImplementedError), and the mixes ("_M" keeps some
tensors at higher precision, chosen per layer) are llama.cpp's logic: only its quantizer produces
files identical to what llama.cpp users get. It comes with the optional `gguf` extra
(`llama-cpp-python`, built from source: cmake and a C++17 compiler, about 5 minutes); without it
`available()` says so and the platform does not offer these choices.

Torch-free and import-light: `available()` only looks the package up; `quantize` loads it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Literal

from loraforge.engine.export.errors import ExportError, QuantizationUnavailableError

KQuant = Literal["q4_k_m", "q5_k_m", "q6_k"]
K_QUANTS: tuple[KQuant, ...] = ("q4_k_m", "q5_k_m", "q6_k")
# llama.cpp's `enum llama_ftype` names, resolved on the module (the numbers are llama.cpp's).
_FTYPES: dict[str, str] = {
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
}
UNAVAILABLE_REASON = (
    "install the gguf extra: pip install '.[gguf]' "
    "(builds llama.cpp from source; needs cmake and a C++ compiler)"
)


def available() -> tuple[bool, str]:
    """(True, "") when llama.cpp's quantizer can be loaded here; else (False, the fix)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False, UNAVAILABLE_REASON
    return True, ""


def _load() -> Any:
    ok, why = available()
    if not ok:
        raise QuantizationUnavailableError(f"K-quants need llama.cpp's quantizer: {why}")
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:  # installed but its shared library does not load
        raise QuantizationUnavailableError(
            f"llama-cpp-python is installed but does not load ({exc}); reinstall the gguf extra."
        ) from exc
    return llama_cpp


def quantize(src_gguf: Path, dst: Path, kind: str, *, threads: int | None = None) -> Path:
    """Quantizes SRC_GGUF (F32/F16/BF16, as our converter writes it) to DST with llama.cpp's
    `llama_model_quantize`. The source must be unquantized: llama.cpp requantizing Q8_0 would
    compound the rounding. DST is written to a temporary name and renamed when complete."""
    if kind not in _FTYPES:
        raise ExportError(
            f"K-quant must be one of {', '.join(K_QUANTS)}, not {kind!r}.", field="quantization"
        )
    if not src_gguf.is_file():
        raise ExportError(f"{str(src_gguf)!r} is not a file.", field="src_gguf")
    llama_cpp = _load()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, _FTYPES[kind])
    params.nthread = threads or os.cpu_count() or 1
    tmp = dst.with_name(dst.name + ".partial")
    try:
        rc = llama_cpp.llama_model_quantize(
            str(src_gguf).encode(), str(tmp).encode(), llama_cpp.ctypes.byref(params)
        )
        if rc != 0 or not tmp.is_file():
            raise ExportError(f"llama.cpp's quantizer failed on {src_gguf.name} ({kind}, return code {rc}).")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst
