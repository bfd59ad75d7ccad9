"""vLLM launch code and the backend choice (no vLLM here: the argument list and the logic only)."""

from __future__ import annotations

import sys
from pathlib import Path

from loraforge.inference.vllm import (
    RUNTIME_LORA_ENV,
    choose_backend,
    lora_module_name,
    served_base_name,
    vllm_command,
    vllm_env,
)
from loraforge.settings import Settings


def _settings(tmp_path: Path, backend: str) -> Settings:
    return Settings(data_dir=tmp_path, inference_backend=backend)  # type: ignore[arg-type]


def test_backend_choice(tmp_path: Path) -> None:
    auto = _settings(tmp_path, "auto")
    assert choose_backend(auto, installed=True, gpus=1) == "vllm"
    assert choose_backend(auto, installed=True, gpus=0) == "builtin"
    assert choose_backend(auto, installed=False, gpus=8) == "builtin"
    assert choose_backend(_settings(tmp_path, "builtin"), installed=True, gpus=8) == "builtin"
    assert choose_backend(_settings(tmp_path, "vllm"), installed=False, gpus=0) == "vllm"
    # Detection on this machine: no vLLM installed → builtin.
    assert choose_backend(auto) == "builtin"


def test_vllm_argument_list() -> None:
    adapters = {lora_module_name("/runs/7/output"): "/runs/7/output"}
    args = vllm_command(base="/models/base", port=8123, api_key="", adapters=adapters, max_loras=2)
    assert args[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]

    def value(flag: str) -> str:
        return args[args.index(flag) + 1]

    assert value("--model") == "/models/base"
    assert value("--host") == "127.0.0.1" and value("--port") == "8123"
    assert value("--served-model-name") == served_base_name("/models/base")
    assert value("--max-loras") == "2"
    assert "--enable-lora" in args and "--api-key" not in args  # the key travels in the environment
    assert args[-2:] == ["--lora-modules", f"{lora_module_name('/runs/7/output')}=/runs/7/output"]
    keyed = vllm_command(base="b", port=1, api_key="k", python="/usr/bin/python3")
    assert keyed[0] == "/usr/bin/python3" and keyed[keyed.index("--api-key") + 1] == "k"
    assert "--lora-modules" not in keyed

    env = vllm_env({"PATH": "/bin"}, api_key="secret")
    assert env == {"PATH": "/bin", RUNTIME_LORA_ENV: "True", "VLLM_API_KEY": "secret"}
    assert lora_module_name("/a") == lora_module_name("/a") != lora_module_name("/b")
