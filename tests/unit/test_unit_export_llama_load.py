"""llama.cpp's verification load turns off the extra CPU buffer types (their AMX path crashes on
quantized GGUFs). llama-cpp-python is not installed here, so two stand-ins show both ways the option
reaches llama.cpp: as `Llama`'s keyword, or through llama.cpp's default model parameters for releases
whose `Llama` lacks it (and the defaults are restored after the load)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from loraforge.engine.export import verify


class _Params:
    use_extra_bufts = True


def _fake_llama_cpp(monkeypatch: pytest.MonkeyPatch, *, keyword: bool) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    native = types.ModuleType("llama_cpp.llama_cpp")
    native.llama_model_default_params = _Params  # type: ignore[attr-defined]
    package = types.ModuleType("llama_cpp")
    package.llama_cpp = native  # type: ignore[attr-defined]

    if keyword:

        class Llama:
            def __init__(self, model_path: str, use_extra_bufts: bool = True, **options: Any) -> None:
                seen.update(path=model_path, extra=use_extra_bufts, options=options)

    else:

        class Llama:  # type: ignore[no-redef]
            def __init__(self, model_path: str, **options: Any) -> None:
                # what llama-cpp-python does: start from llama.cpp's defaults, then apply its options
                seen.update(path=model_path, extra=native.llama_model_default_params().use_extra_bufts)

    package.Llama = Llama  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp", package)
    monkeypatch.setitem(sys.modules, "llama_cpp.llama_cpp", native)
    seen["native"] = native
    return seen


@pytest.mark.parametrize("keyword", [True, False])
def test_llama_cpp_loads_without_extra_buffer_types(monkeypatch: pytest.MonkeyPatch, keyword: bool) -> None:
    seen = _fake_llama_cpp(monkeypatch, keyword=keyword)
    verify._load_llama(Path("/x/model-q4_0.gguf"))
    assert seen["path"] == "/x/model-q4_0.gguf" and seen["extra"] is False
    assert seen["native"].llama_model_default_params is _Params  # llama.cpp's defaults restored
