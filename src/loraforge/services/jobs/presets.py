"""Shipped presets: ready-made specs for common model families, read from package data.

Files live in `loraforge/presets/<model>/<method>.yaml` (shipped with the wheel through pyproject's
package-data), each `{preset: {family, size, method, hardware, description}, spec: {...}}`. A preset's spec
has no `dataset`: the user picks one in the form. Every preset is validated by a parametrised test with
the engine's `load_spec`, so a shipped preset always starts.

`hardware` says where a preset runs: `{device: gpu, min_gpu_memory_gb: N}` (N at least the memory
estimate) or `{device: cpu, min_gpu_memory_gb: null}`. A CPU preset pins `devices: cpu` and fp32, because
bf16/fp16 autocast on a CPU is slower than fp32 and changes the loss (the server coerces them anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from loraforge.errors import NotFound

PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"
Method = Literal["lora", "qlora", "full"]
Device = Literal["cpu", "gpu"]
METHODS: tuple[Method, ...] = ("lora", "qlora", "full")
DEMO_PRESET = "demo-tiny-full"  # the recipe of the one-click "Train the demo"


@dataclass(frozen=True)
class Hardware:
    device: Device
    min_gpu_memory_gb: float | None  # None for CPU presets

    def runs_on(self, gpu_count: int) -> bool:
        """Whether a node with `gpu_count` GPUs can run it (GPU memory is the operator's to check)."""
        return self.device == "cpu" or gpu_count > 0


@dataclass(frozen=True)
class Preset:
    id: str  # "<model folder>-<method>", e.g. qwen2.5-7b-instruct-lora
    family: str
    size: str
    method: Method
    description: str
    hardware: Hardware
    spec: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.spec["model_name_or_path"])


def _hardware(path: Path, raw: Any, spec: dict[str, Any]) -> Hardware:
    if not isinstance(raw, dict) or raw.get("device") not in ("cpu", "gpu"):
        raise ValueError(f"{path}: hardware must be {{device: cpu|gpu, min_gpu_memory_gb: …}}")
    memory = raw.get("min_gpu_memory_gb")
    if raw["device"] == "gpu":
        if not isinstance(memory, int | float) or memory <= 0:
            raise ValueError(f"{path}: a GPU preset names its min_gpu_memory_gb")
        return Hardware("gpu", float(memory))
    if (
        spec.get("devices") != "cpu"
        or spec.get("precision") != "fp32"
        or spec.get("bf16")
        or spec.get("fp16")
    ):
        raise ValueError(f"{path}: a CPU preset pins devices: cpu and precision: fp32")
    return Hardware("cpu", None)


def _read(path: Path) -> Preset:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    meta, spec = doc["preset"], doc["spec"]
    method = meta["method"]
    if method not in METHODS or path.stem != method:
        raise ValueError(f"{path}: method {method!r} must be one of {METHODS} and match the file name")
    return Preset(
        id=f"{path.parent.name}-{method}",
        family=str(meta["family"]),
        size=str(meta["size"]),
        method=method,
        description=str(meta.get("description", "")),
        hardware=_hardware(path, meta.get("hardware"), spec),
        spec=dict(spec),
    )


def _size_order(size: str) -> float:
    """`7B` → 7, `135M` → 0.135; a named size (the demo's `tiny`) sorts first."""
    try:
        number = float(size.rstrip("BbMm"))
    except ValueError:
        return 0.0
    return number / 1000 if size[-1:] in "Mm" else number


@lru_cache(maxsize=1)
def _load_all() -> tuple[Preset, ...]:
    """Read once per process (they are package data and never change while running)."""
    method_order = {m: i for i, m in enumerate(METHODS)}
    presets = [_read(p) for p in PRESETS_DIR.glob("*/*.yaml")]
    # CPU presets (the demo) first: they are the ones that run anywhere.
    presets.sort(
        key=lambda p: (p.hardware.device != "cpu", p.family, _size_order(p.size), method_order[p.method])
    )
    return tuple(presets)


def list_presets() -> list[Preset]:
    """Every shipped preset: CPU-ready ones first, then by family, smaller models first, then lora,
    qlora, full."""
    return list(_load_all())


def get_preset(preset_id: str) -> Preset:
    for preset in _load_all():
        if preset.id == preset_id:
            return preset
    raise NotFound("preset not found", code="preset_not_found")
