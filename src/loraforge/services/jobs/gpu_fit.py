"""GPU inventory and fitting for admission (the local executor's node).

- Inventory: `settings.gpu_count` when set (operators pin it; tests use it because no GPU exists here),
  else the NVML device count (`nvidia-ml-py`), else 0. NVML raises without a driver: that means 0.
- Demand of a job, from its spec's `devices` (see `loraforge.engine.spec.JobSpec.devices`):
  `cpu` (or `use_cpu: true`) needs 0; a list of CUDA indices needs that many (the indices are a
  preference: the scheduler hands out free ones, preferring those); `auto` needs one GPU when the node
  has any and none otherwise (the engine then trains on CPU). `auto` deliberately does not mean "all
  GPUs": that would serialise every job on a shared node; list the indices to ask for several.
- Free devices: the inventory minus the indices held by active jobs (`jobs.devices`).

Torch-free and DB-free apart from `held_devices`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import ACTIVE, Job
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.settings import Settings

_nvml_lock = threading.Lock()
_nvml_count: int | None = None


def nvml_device_count() -> int:
    """GPUs NVML sees (cached: the count does not change while the server runs); 0 without NVML."""
    global _nvml_count
    with _nvml_lock:
        if _nvml_count is None:
            _nvml_count = 0
            with contextlib.suppress(Exception):  # ImportError, NVMLError_LibraryNotFound, ...
                import pynvml

                pynvml.nvmlInit()
                try:
                    _nvml_count = int(pynvml.nvmlDeviceGetCount())
                finally:
                    pynvml.nvmlShutdown()
        return _nvml_count


def inventory(settings: Settings) -> int:
    """How many GPUs the node has for jobs."""
    return settings.gpu_count if settings.gpu_count is not None else nvml_device_count()


def demand(spec: dict[str, Any], node_gpus: int) -> int:
    """GPUs a job needs (module docstring). `spec` is the stored user spec (engine vocabulary)."""
    devices = spec.get("devices", "auto")
    if spec.get("use_cpu") or devices == "cpu":
        return 0
    indices = requested_indices(spec)
    if indices is not None:
        return len(indices)
    return 1 if node_gpus > 0 else 0  # auto


def requested_indices(spec: dict[str, Any]) -> list[int] | None:
    """The CUDA indices the spec lists (an int, "0,1", "cuda:0" or a list), or None for auto/cpu."""
    devices = spec.get("devices", "auto")
    if isinstance(devices, bool) or devices in (None, "auto", "cpu"):
        return None
    if isinstance(devices, int):
        return [devices]
    if isinstance(devices, str):
        devices = [d for d in devices.split(",") if d.strip()]
    if isinstance(devices, list):
        with contextlib.suppress(TypeError, ValueError):
            return sorted({int(str(d).strip().removeprefix("cuda:")) for d in devices})
    return None


def check_fits_node(settings: Settings, spec: dict[str, Any]) -> None:
    """Refuse (422 on `spec.devices`) a spec that needs more GPUs than the node has at all: it would
    wait forever. Only for the local executor (Ray places jobs on its own cluster)."""
    if settings.executor != "local":
        return
    node = inventory(settings)
    need = demand(spec, node)
    if need > node:
        message = f"needs {need} GPU(s) but this node has {node}" + (
            "; use `cpu` or `auto`" if node == 0 else ""
        )
        raise InvalidInput(
            f"invalid job spec: devices: {message}",
            code="invalid_spec",
            fields=[FieldIssue(field="spec.devices", message=message)],
        )


def held_devices(session: Session) -> set[int]:
    """GPU indices held by active (starting, running, stopping) jobs."""
    rows = session.scalars(
        select(Job.devices).where(Job.status.in_([s.value for s in ACTIVE]), Job.devices.is_not(None))
    )
    held: set[int] = set()
    for devices in rows:
        held.update(int(d) for d in devices or [])
    return held


def pick(need: int, free: Iterable[int], prefer: list[int] | None = None) -> list[int] | None:
    """`need` indices out of `free` (the preferred ones first, then the lowest), or None if too few."""
    available = sorted(set(free))
    if need <= 0:
        return []
    if len(available) < need:
        return None
    preferred = [d for d in (prefer or []) if d in available]
    rest = [d for d in available if d not in preferred]
    return sorted((preferred + rest)[:need])
