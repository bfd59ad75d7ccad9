"""One telemetry reading of the machine this process runs on: CPU, memory, the data directory's disk
and every GPU NVML sees.

Torch-free and DB-free: the server samples its own host with it, and the Ray telemetry agent
(`executors/ray_telemetry.py`) imports it on every Ray node. GPUs come through the engine's NVML reader
(`loraforge.engine.resources`), so a node reports the same devices its jobs report.

Made to be called every few seconds for the life of a process, cheaply:
- NVML is initialised once per process (not per reading) and kept; when it cannot start (no library,
  no driver) that answer is kept too, and `nvml_note()` says so.
- CPU use is measured against this module's own previous reading (not psutil's process-wide
  `cpu_percent` state, which the dashboard's host card also moves).
- NVML ignores CUDA_VISIBLE_DEVICES: a Ray actor without GPUs still reports all of its node's GPUs.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psutil

# Private to the engine by name only: it is torch-free and made to be shared (see services/platform/host.py).
from loraforge.engine.resources import _Nvml

NVML_MISSING_NOTE = "NVML not available on this node: no GPU telemetry"

# The very first CPU reading of a process has no previous one to compare with: it waits this long once.
_FIRST_CPU_WAIT_S = 0.1

_lock = threading.Lock()
_nvml: _Nvml | None = None
_last_cpu: tuple[float, float] | None = None  # (busy seconds, total seconds) of the previous reading


def _nvml_reader() -> _Nvml:
    global _nvml
    if _nvml is None:
        # None = every device: node telemetry is about the machine, not about this process's share.
        _nvml = _Nvml(None)
    return _nvml


def reset() -> None:
    """Forget the NVML handle and the CPU baseline (the next reading starts afresh). For tests, and for
    a long-lived agent that wants to pick up a driver installed after it started."""
    global _nvml, _last_cpu
    with _lock:
        if _nvml is not None:
            _nvml.close()
        _nvml = None
        _last_cpu = None


def _cpu_times() -> tuple[float, float]:
    times = psutil.cpu_times()
    total = float(sum(times))
    # Linux counts guest time inside user time already; psutil.cpu_percent subtracts it the same way.
    total -= float(getattr(times, "guest", 0.0)) + float(getattr(times, "guest_nice", 0.0))
    idle = float(times.idle) + float(getattr(times, "iowait", 0.0))
    return total - idle, total


def _cpu_percent() -> float:
    """System-wide CPU use (0..100, all cores together) since this module's previous reading."""
    global _last_cpu
    if _last_cpu is None:
        _last_cpu = _cpu_times()
        time.sleep(_FIRST_CPU_WAIT_S)
    busy, total = _cpu_times()
    last_busy, last_total = _last_cpu
    _last_cpu = (busy, total)
    elapsed = total - last_total
    if elapsed <= 0:
        return 0.0
    return round(min(100.0, max(0.0, 100.0 * (busy - last_busy) / elapsed)), 1)


def _disk(data_dir: Path) -> tuple[int | None, int | None]:
    """(free, total) bytes of the disk holding `data_dir` (or its nearest existing parent: before the
    first upload the data directory may not exist yet)."""
    where = data_dir
    while not where.exists() and where.parent != where:
        where = where.parent
    try:
        usage = shutil.disk_usage(where)
    except OSError:
        return None, None
    return int(usage.free), int(usage.total)


def sample(data_dir: Path) -> dict[str, Any]:
    """One reading, in the shape `NodeSample.data` stores: `{cpu_percent, memory_used_bytes,
    memory_total_bytes, disk_free_bytes, disk_total_bytes, gpus: [{index, name, utilization,
    memory_used_bytes, memory_total_bytes, temperature_c, power_w, throttle}]}`. A GPU field NVML
    cannot answer for a device (MIG, vGPU) is None."""
    with _lock:
        cpu = _cpu_percent()
        nvml = _nvml_reader()
        gpus = nvml.telemetry() if nvml.available else []
    memory = psutil.virtual_memory()
    free, total = _disk(data_dir)
    return {
        "cpu_percent": cpu,
        "memory_used_bytes": int(memory.total - memory.available),
        "memory_total_bytes": int(memory.total),
        "disk_free_bytes": free,
        "disk_total_bytes": total,
        "gpus": gpus,
    }


def static_info(data_dir: Path) -> dict[str, Any]:
    """What does not change while the machine runs, in the shape `Node.info` stores: `{cpus,
    memory_total_bytes, disk_total_bytes, gpus: [{index, name, memory_total_bytes,
    slowdown_temperature_c}], labels, gpu_note}` (gpu_note: `nvml_note()`)."""
    with _lock:
        nvml = _nvml_reader()
        available = nvml.available
        gpus = nvml.devices() if available else []
    _free, total = _disk(data_dir)
    return {
        "cpus": psutil.cpu_count() or 1,
        "memory_total_bytes": int(psutil.virtual_memory().total),
        "disk_total_bytes": total,
        "gpus": gpus,
        "labels": {},
        "gpu_note": None if available else NVML_MISSING_NOTE,
    }


def resource_gpus() -> list[dict[str, Any]]:
    """The GPUs in the engine's `resource` event shape (`util_pct`, `mem_used_mb`, …: the dashboard's host
    card), read through the same NVML handle as `sample()` instead of a fresh init per call."""
    with _lock:
        nvml = _nvml_reader()
        return nvml.sample() if nvml.available else []


def nvml_available() -> bool:
    with _lock:
        return _nvml_reader().available


def nvml_note() -> str | None:
    """Why this node has no GPU telemetry, or None when NVML works (even with zero GPUs)."""
    return None if nvml_available() else NVML_MISSING_NOTE
