"""vLLM as the inference backend: one `vllm serve` process per base model, LoRA adapters loaded at runtime.

Torch-free (the server imports it). Launch: `python -m vllm.entrypoints.openai.api_server --model BASE
--host 127.0.0.1 --port P --api-key TOKEN --served-model-name NAME --enable-lora --max-loras N
--max-lora-rank R [--lora-modules name=path ...]`, with `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True` so that
further adapters for the same base are added with `POST /v1/load_lora_adapter {lora_name, lora_path}`
instead of a restart. The gateway then sends requests with `model` = the adapter's lora module name
(or the served base name); vLLM needs no `loraforge` extension.

`choose_backend(settings)` decides between the builtin worker and vLLM (`auto`: vLLM when it is
installed and NVML sees a GPU).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import sys
from pathlib import Path

from loraforge.settings import Settings

DEFAULT_MAX_LORAS = 4
DEFAULT_MAX_LORA_RANK = 64
RUNTIME_LORA_ENV = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"


def nvidia_gpu_count() -> int:
    """GPUs NVML reports (0 without the library, the driver or a GPU)."""
    try:
        import pynvml
    except ImportError:
        return 0
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError has many subclasses (no driver, no device...): all mean "no GPU"
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    except Exception:
        return 0
    finally:
        # Shutting down a library that failed half-way is best effort.
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def choose_backend(settings: Settings, *, installed: bool | None = None, gpus: int | None = None) -> str:
    """`builtin` or `vllm` for the configured `inference_backend` (`installed`/`gpus` override detection)."""
    if settings.inference_backend != "auto":
        return settings.inference_backend
    if installed is None:
        installed = vllm_installed()
    if not installed:
        return "builtin"
    if gpus is None:
        gpus = nvidia_gpu_count()
    return "vllm" if gpus > 0 else "builtin"


def lora_module_name(adapter: str | Path) -> str:
    """A stable vLLM lora module name for an adapter folder (its `model` in requests)."""
    return "lora-" + hashlib.sha256(str(adapter).encode()).hexdigest()[:16]


def served_base_name(base: str) -> str:
    return "base-" + hashlib.sha256(base.encode()).hexdigest()[:16]


def vllm_command(
    *,
    base: str,
    port: int,
    api_key: str,
    adapters: dict[str, str] | None = None,
    max_loras: int = DEFAULT_MAX_LORAS,
    max_lora_rank: int = DEFAULT_MAX_LORA_RANK,
    python: str | None = None,
    host: str = "127.0.0.1",
) -> list[str]:
    """The argument list that starts vLLM's OpenAI server for `base` (an argument list: no shell).

    The API key is on the command line because vLLM only reads it there or from `VLLM_API_KEY`; the
    manager passes it through the environment instead when `api_key` is empty (see `vllm_env`).
    """
    args = [
        python or sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        base,
        "--host",
        host,
        "--port",
        str(port),
        "--served-model-name",
        served_base_name(base),
        "--enable-lora",
        "--max-loras",
        str(max_loras),
        "--max-lora-rank",
        str(max_lora_rank),
    ]
    if api_key:
        args += ["--api-key", api_key]
    if adapters:
        args.append("--lora-modules")
        args += [f"{name}={path}" for name, path in sorted(adapters.items())]
    return args


def vllm_env(base_env: dict[str, str], *, api_key: str) -> dict[str, str]:
    """The environment for a vLLM server: runtime LoRA loading on, the key in `VLLM_API_KEY`."""
    env = dict(base_env)
    env[RUNTIME_LORA_ENV] = "True"
    env["VLLM_API_KEY"] = api_key
    return env
