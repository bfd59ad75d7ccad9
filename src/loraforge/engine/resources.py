"""Resource sampling inside the engine: a daemon thread that emits `resource` events.

Sampling in the engine (not the server) makes it work the same for every executor: a Ray worker on
another node reports its own CPU, memory and GPUs through the one event stream.

- CPU and resident memory of the engine's process tree (torchrun ranks and dataloader workers are
  children) via psutil. `cpu_pct` is summed over the tree: 100 means one core busy.
- GPUs via NVML (`nvidia-ml-py`, imported as `pynvml`). Without the library or a driver
  `nvmlInit()` raises an NVMLError: then `gpus` stays empty and nothing fails. Only the devices this
  process may use are reported (CUDA_VISIBLE_DEVICES as indices; `""` means none).

Torch-free and server-free; the server imports `loraforge.engine.events` only.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import threading
from typing import Any, Protocol

import psutil

_MB = 1024 * 1024


class _Emitter(Protocol):
    def emit(self, event_type: Any, **data: Any) -> Any: ...


def visible_gpu_indices(env: dict[str, str] | None = None) -> list[int] | None:
    """NVML indices this process may use: None = all (unset), [] = none, else the listed integers.

    UUIDs or MIG ids in CUDA_VISIBLE_DEVICES cannot be mapped to indices cheaply; they mean "all"
    (better a wider report than none).
    """
    value = (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        return []
    if all(p.isascii() and p.isdigit() for p in parts):
        return [int(p) for p in parts]
    return None


class _Nvml:
    """NVML handles for the visible devices; `available` is False when NVML cannot start."""

    def __init__(self, indices: list[int] | None) -> None:
        self.available = False
        self._handles: list[tuple[int, Any]] = []
        self._pynvml: Any = None
        if indices == []:
            return
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # ImportError, NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, ...
            return
        self._pynvml = pynvml
        self.available = True
        try:
            count = int(pynvml.nvmlDeviceGetCount())
            wanted = range(count) if indices is None else [i for i in indices if 0 <= i < count]
            self._handles = [(i, pynvml.nvmlDeviceGetHandleByIndex(i)) for i in wanted]
        except Exception:
            self._handles = []

    def sample(self) -> list[dict[str, Any]]:
        nv = self._pynvml
        out: list[dict[str, Any]] = []
        for index, handle in self._handles:
            gpu: dict[str, Any] = {"index": index}
            # Each query on its own: a device may support memory but not temperature (MIG, vGPU).
            with contextlib.suppress(Exception):
                gpu["util_pct"] = float(nv.nvmlDeviceGetUtilizationRates(handle).gpu)
            with contextlib.suppress(Exception):
                mem = nv.nvmlDeviceGetMemoryInfo(handle)
                gpu["mem_used_mb"] = round(mem.used / _MB, 1)
                gpu["mem_total_mb"] = round(mem.total / _MB, 1)
            with contextlib.suppress(Exception):
                gpu["temp_c"] = float(nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))
            out.append(gpu)
        return out

    def devices(self) -> list[dict[str, Any]]:
        """Static facts per device: `{index, name, memory_total_bytes, slowdown_temperature_c}` (a field
        NVML cannot answer for a device is None)."""
        nv = self._pynvml
        out: list[dict[str, Any]] = []
        for index, handle in self._handles:
            gpu: dict[str, Any] = {"index": index, "name": None, "memory_total_bytes": None}
            with contextlib.suppress(Exception):
                gpu["name"] = _text(nv.nvmlDeviceGetName(handle))
            with contextlib.suppress(Exception):
                gpu["memory_total_bytes"] = int(nv.nvmlDeviceGetMemoryInfo(handle).total)
            gpu["slowdown_temperature_c"] = _slowdown_threshold(nv, handle)
            out.append(gpu)
        return out

    def telemetry(self) -> list[dict[str, Any]]:
        """A node-level reading per device, in bytes and watts: `{index, name, utilization,
        memory_used_bytes, memory_total_bytes, temperature_c, power_w, throttle: [reason names]}`.
        Separate from `sample()` so the engine's `resource` events keep their shape."""
        nv = self._pynvml
        out: list[dict[str, Any]] = []
        for index, handle in self._handles:
            gpu: dict[str, Any] = {
                "index": index,
                "name": None,
                "utilization": None,
                "memory_used_bytes": None,
                "memory_total_bytes": None,
                "temperature_c": None,
                "power_w": None,
                "throttle": [],
            }
            with contextlib.suppress(Exception):
                gpu["name"] = _text(nv.nvmlDeviceGetName(handle))
            with contextlib.suppress(Exception):
                gpu["utilization"] = float(nv.nvmlDeviceGetUtilizationRates(handle).gpu)
            with contextlib.suppress(Exception):
                mem = nv.nvmlDeviceGetMemoryInfo(handle)
                gpu["memory_used_bytes"] = int(mem.used)
                gpu["memory_total_bytes"] = int(mem.total)
            with contextlib.suppress(Exception):
                gpu["temperature_c"] = float(nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))
            with contextlib.suppress(Exception):
                gpu["power_w"] = round(float(nv.nvmlDeviceGetPowerUsage(handle)) / 1000.0, 1)  # mW
            with contextlib.suppress(Exception):
                gpu["throttle"] = throttle_names(int(_throttle_mask(nv, handle)))
            out.append(gpu)
        return out

    def close(self) -> None:
        if self.available:
            with contextlib.suppress(Exception):
                self._pynvml.nvmlShutdown()
            self.available = False


# NVML's clock-event ("throttle") reason bits; stable across driver versions. Idle is left out: an idle
# GPU runs slow clocks by design and is not throttled in any sense an operator cares about.
THROTTLE_REASONS: tuple[tuple[int, str], ...] = (
    (0x0000000000000002, "applications_clocks_setting"),
    (0x0000000000000004, "sw_power_cap"),
    (0x0000000000000008, "hw_slowdown"),
    (0x0000000000000010, "sync_boost"),
    (0x0000000000000020, "sw_thermal_slowdown"),
    (0x0000000000000040, "hw_thermal_slowdown"),
    (0x0000000000000080, "hw_power_brake_slowdown"),
    (0x0000000000000100, "display_clock_setting"),
)


def throttle_names(mask: int) -> list[str]:
    """The reason names set in an NVML clock-event bit mask, in a fixed order."""
    return [name for bit, name in THROTTLE_REASONS if mask & bit]


def _throttle_mask(nv: Any, handle: Any) -> int:
    # Newer bindings call them "clocks event reasons"; the old name still exists but is deprecated.
    getter = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if getter is None:
        getter = nv.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(getter(handle))


def _slowdown_threshold(nv: Any, handle: Any) -> float | None:
    """The temperature at which the GPU slows itself down (NVML's slowdown threshold), None when unknown."""
    try:
        which = getattr(nv, "NVML_TEMPERATURE_THRESHOLD_SLOWDOWN", 1)
        value = float(nv.nvmlDeviceGetTemperatureThreshold(handle, which))
    except Exception:
        return None
    return value if value > 0 else None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def own_peak_rss_mb() -> float:
    """This process's highest resident set size so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MB if sys.platform == "darwin" else peak / 1024


class RunSummary:
    """Peaks and averages over every sample taken so far. The peak is never below the latest sample:
    it is the maximum over all samples (the current one included) and this process's own kernel-
    recorded peak, which also catches a spike between two samples."""

    def __init__(self) -> None:
        self.samples = 0
        self.peak_rss_mb = 0.0
        self._cpu_sum = 0.0
        self._gpu: dict[int, tuple[float, float, int]] = {}  # index -> (peak mem, util sum, util samples)

    def add(
        self, cpu_pct: float, rss_mb: float, gpus: list[dict[str, Any]], own_peak_mb: float
    ) -> dict[str, Any]:
        """Fold one sample in; returns the summary fields to send along with it."""
        self.samples += 1
        self._cpu_sum += cpu_pct
        self.peak_rss_mb = max(self.peak_rss_mb, rss_mb, own_peak_mb)
        for gpu in gpus:
            peak, util_sum, n = self._gpu.get(gpu["index"], (0.0, 0.0, 0))
            peak = max(peak, float(gpu.get("mem_used_mb") or 0.0))
            if isinstance(gpu.get("util_pct"), float):
                util_sum, n = util_sum + gpu["util_pct"], n + 1
            self._gpu[gpu["index"]] = (peak, util_sum, n)
            gpu["mem_peak_mb"] = round(peak, 1) if "mem_used_mb" in gpu else None
            gpu["util_avg_pct"] = round(util_sum / n, 1) if n else None
        return {
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "cpu_avg_pct": round(self._cpu_sum / self.samples, 1),
        }


class ResourceSampler:
    """Emits `{"type": "resource", cpu_pct, rss_mb, peak_rss_mb, cpu_avg_pct, gpus: [...]}` every
    `interval_s` seconds (the peak and average over this run's samples so far: `RunSummary`).

    `start()` launches a daemon thread (it never keeps a finished run alive); `stop()` ends it and
    waits briefly. The first sample comes after one interval: psutil's cpu_percent needs a previous
    reading to compare against, and the first seconds of a run are imports anyway.
    """

    def __init__(self, writer: _Emitter, interval_s: float, *, pid: int | None = None) -> None:
        self.writer = writer
        self.interval_s = interval_s
        self._root = psutil.Process(pid if pid is not None else os.getpid())
        self._procs: dict[int, psutil.Process] = {}  # reused: cpu_percent compares against the last call
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml: _Nvml | None = None
        self.summary = RunSummary()

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="loraforge-resources", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def __enter__(self) -> ResourceSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        self._nvml = _Nvml(visible_gpu_indices())
        try:
            self._tree_cpu()  # prime cpu_percent
            while not self._stop.wait(self.interval_s):
                try:
                    self.writer.emit("resource", **self.sample())
                except Exception:  # noqa: S112 - a sampling hiccup must never end a training run
                    continue
        finally:
            self._nvml.close()

    def _tree(self) -> list[psutil.Process]:
        try:
            found = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return []
        procs: list[psutil.Process] = []
        for proc in found:
            known = self._procs.get(proc.pid)
            procs.append(known if known is not None else proc)
        self._procs = {p.pid: p for p in procs}
        return procs

    def _tree_cpu(self) -> tuple[float, float]:
        cpu = 0.0
        rss = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
        return cpu, rss / _MB

    def sample(self) -> dict[str, Any]:
        """One reading: `{"cpu_pct", "rss_mb", "peak_rss_mb", "cpu_avg_pct", "gpus"}`."""
        cpu, rss_mb = self._tree_cpu()
        gpus = self._nvml.sample() if self._nvml is not None and self._nvml.available else []
        summary = self.summary.add(
            cpu, rss_mb, gpus, own_peak_rss_mb() if self._root.pid == os.getpid() else 0.0
        )
        return {"cpu_pct": round(cpu, 1), "rss_mb": round(rss_mb, 1), **summary, "gpus": gpus}
