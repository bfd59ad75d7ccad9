"""K-quant availability is reported honestly, and `quantize` drives llama.cpp's quantizer.

llama-cpp-python is an optional extra built from source: where it is absent (this machine's default)
the reason names the fix; the call plumbing is checked against a stand-in `llama_cpp` module that
records what llama.cpp would receive (the real quantizer was checked in a scratch virtualenv).
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from loraforge.engine.export import kquants
from loraforge.engine.export.errors import ExportError, QuantizationUnavailableError

HAVE_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None


@pytest.mark.skipif(HAVE_LLAMA_CPP, reason="llama-cpp-python is installed here")
def test_unavailable_without_llama_cpp_says_how_to_get_it(tmp_path: Path) -> None:
    ok, why = kquants.available()
    assert not ok
    assert "pip install '.[gguf]'" in why and "cmake" in why and "C++ compiler" in why
    src = tmp_path / "model-f16.gguf"
    src.write_bytes(b"GGUF")
    with pytest.raises(QuantizationUnavailableError) as exc:
        kquants.quantize(src, tmp_path / "out.gguf", "q4_k_m")
    assert exc.value.code == "quantization_unavailable" and "[gguf]" in exc.value.message
    assert not (tmp_path / "out.gguf").exists()


class _Params(ctypes.Structure):
    _fields_ = [("nthread", ctypes.c_int32), ("ftype", ctypes.c_int)]


def _fake_llama_cpp(monkeypatch: pytest.MonkeyPatch, rc: int = 0) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    mod = types.ModuleType("llama_cpp")
    mod.__spec__ = importlib.machinery.ModuleSpec("llama_cpp", None)

    def quantize(src: bytes, dst: bytes, params: Any) -> int:
        p = ctypes.cast(params, ctypes.POINTER(_Params)).contents
        calls.append({"src": src, "dst": dst, "ftype": p.ftype, "nthread": p.nthread})
        if rc == 0:
            Path(dst.decode()).write_bytes(b"GGUF-quantized")
        return rc

    mod.ctypes = ctypes  # type: ignore[attr-defined]
    mod.llama_model_quantize_default_params = _Params  # type: ignore[attr-defined]
    mod.llama_model_quantize = quantize  # type: ignore[attr-defined]
    # llama.cpp's enum llama_ftype values
    mod.LLAMA_FTYPE_MOSTLY_Q4_K_M = 15  # type: ignore[attr-defined]
    mod.LLAMA_FTYPE_MOSTLY_Q5_K_M = 17  # type: ignore[attr-defined]
    mod.LLAMA_FTYPE_MOSTLY_Q6_K = 18  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp", mod)
    return calls


@pytest.mark.parametrize(("kind", "ftype"), [("q4_k_m", 15), ("q5_k_m", 17), ("q6_k", 18)])
def test_quantize_calls_llama_model_quantize(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, ftype: int
) -> None:
    calls = _fake_llama_cpp(monkeypatch)
    assert kquants.available() == (True, "")
    src, dst = tmp_path / "m-f16.gguf", tmp_path / f"m-{kind}.gguf"
    src.write_bytes(b"GGUF")
    assert kquants.quantize(src, dst, kind, threads=2) == dst
    assert calls == [
        {"src": str(src).encode(), "dst": str(dst).encode() + b".partial", "ftype": ftype, "nthread": 2}
    ]
    assert dst.read_bytes() == b"GGUF-quantized" and not dst.with_name(dst.name + ".partial").exists()


def test_quantizer_failure_and_bad_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_llama_cpp(monkeypatch, rc=1)
    src, dst = tmp_path / "m.gguf", tmp_path / "o.gguf"
    src.write_bytes(b"GGUF")
    with pytest.raises(ExportError, match="return code 1"):
        kquants.quantize(src, dst, "q6_k")
    assert not dst.exists()
    with pytest.raises(ExportError) as bad:
        kquants.quantize(src, dst, "q2_k")
    assert bad.value.details["field"] == "quantization"
