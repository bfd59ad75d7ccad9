"""What this host has and uses now: CPUs, memory, GPUs and the data directory's disk.

The dashboard shows it so a user can see at a glance whether the machine is busy before queueing a job.
GPUs are read through the engine's NVML reader (`loraforge.engine.resources`), held open by the node
sampler (`executors/node_sampler.py`, which also feeds the operations loop): the same numbers a running
job reports in its `resource` events, and the same quiet empty list when there is no driver.
Torch-free and DB-free.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from loraforge.executors import node_sampler

# psutil's system-wide cpu_percent(None) compares against its previous call. The first call of the
# process has nothing to compare with (it answers 0.0), so it waits this long once instead.
_FIRST_SAMPLE_S = 0.2
_cpu_lock = threading.Lock()
_cpu_primed = False


@dataclass(frozen=True)
class DiskUsage:
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class HostSnapshot:
    cpu_count: int
    cpu_percent: float
    memory_total_bytes: int
    memory_used_bytes: int
    gpus: list[dict[str, Any]]
    disk: DiskUsage | None


def _cpu_percent() -> float:
    """System-wide CPU use (0..100) since the previous call, i.e. since the dashboard's last poll."""
    global _cpu_primed
    with _cpu_lock:
        interval = None if _cpu_primed else _FIRST_SAMPLE_S
        _cpu_primed = True
        return float(psutil.cpu_percent(interval=interval))


def _gpus() -> list[dict[str, Any]]:
    return node_sampler.resource_gpus()


def _disk(data_dir: Path) -> DiskUsage | None:
    # Sizes only: the path itself is a server detail that researchers have no use for.
    # Before the first upload the data directory may not exist yet: its parent is on the same disk.
    where = data_dir if data_dir.exists() else data_dir.parent
    try:
        usage = shutil.disk_usage(where)
    except OSError:
        return None
    return DiskUsage(total_bytes=usage.total, free_bytes=usage.free)


def snapshot(data_dir: Path) -> HostSnapshot:
    """One reading of the host. GPU fields are those NVML answers; a device may lack some (MIG, vGPU)."""
    memory = psutil.virtual_memory()
    return HostSnapshot(
        cpu_count=psutil.cpu_count() or 1,
        cpu_percent=_cpu_percent(),
        memory_total_bytes=int(memory.total),
        memory_used_bytes=int(memory.total - memory.available),
        gpus=_gpus(),
        disk=_disk(data_dir),
    )
