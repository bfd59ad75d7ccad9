"""Shipped presets: ready-made specs for common model families, read from package data.

Files live in `loraforge/presets/<model>/<method>.yaml` (shipped with the wheel through pyproject's
package-data), each `{preset: {family, size, method, description}, spec: {...}}`. A preset's spec has
no `dataset`: the user picks one in the form. Every preset is validated by a parametrised test with
the engine's `load_spec`, so a shipped preset always starts.
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
METHODS: tuple[Method, ...] = ("lora", "qlora", "full")


@dataclass(frozen=True)
class Preset:
    id: str  # "<model folder>-<method>", e.g. qwen2.5-7b-instruct-lora
    family: str
    size: str
    method: Method
    description: str
    spec: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.spec["model_name_or_path"])


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
        spec=dict(spec),
    )


@lru_cache(maxsize=1)
def _load_all() -> tuple[Preset, ...]:
    """Read once per process (they are package data and never change while running)."""
    method_order = {m: i for i, m in enumerate(METHODS)}
    presets = [_read(p) for p in PRESETS_DIR.glob("*/*.yaml")]
    presets.sort(key=lambda p: (p.family, float(p.size.rstrip("BbMm") or 0), method_order[p.method]))
    return tuple(presets)


def list_presets() -> list[Preset]:
    """Every shipped preset, grouped by family, smaller models first, then lora, qlora, full."""
    return list(_load_all())


def get_preset(preset_id: str) -> Preset:
    for preset in _load_all():
        if preset.id == preset_id:
            return preset
    raise NotFound("preset not found", code="preset_not_found")
