"""The engine's resource sampler: real psutil readings of a real process tree, NVML optional.

Only the GPU side is faked (there is no GPU here): NVML's functions are replaced on the real
`pynvml` module, with its real exception classes.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from loraforge.engine.events import EVENTS_FILE, EventWriter, ResourceEvent, parse_line, read_events_file
from loraforge.engine.resources import ResourceSampler, RunSummary, _Nvml, visible_gpu_indices


def _resource_events(run_dir: Path) -> list[ResourceEvent]:
    return [e for e in read_events_file(run_dir / EVENTS_FILE) if isinstance(e, ResourceEvent)]


def _wait_for_events(run_dir: Path, count: int, deadline_s: float = 60.0) -> list[ResourceEvent]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = _resource_events(run_dir)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} resource events after {deadline_s}s")


@pytest.fixture
def no_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise pynvml.NVMLError_LibraryNotFound()

    monkeypatch.setattr(pynvml, "nvmlInit", missing)


def test_sampler_emits_cpu_and_memory_of_the_process_tree(tmp_path: Path, no_nvml: None):
    stdout = io.StringIO()
    writer = EventWriter(tmp_path, stream=stdout)
    # A child that allocates and spins: its memory and CPU count towards the engine's tree.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nb = bytearray(64 << 20)\nt = time.time()\nwhile time.time() - t < 60: pass",
        ]
    )
    try:
        with ResourceSampler(writer, 0.05):
            events = _wait_for_events(tmp_path, 3)
    finally:
        child.kill()
        child.wait()
    writer.close()
    for event in events:
        assert event.cpu_pct is not None and event.cpu_pct >= 0
        assert event.rss_mb is not None and event.rss_mb > 64  # this process + the child's 64 MiB
        assert event.peak_rss_mb is not None and event.peak_rss_mb >= event.rss_mb
        assert event.cpu_avg_pct is not None and event.cpu_avg_pct >= 0
        assert event.gpus == []
    assert max(e.cpu_pct or 0 for e in events) > 0
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)
    # The same events went to stdout, marked, and parse back as resource events.
    marked = [parse_line(line) for line in stdout.getvalue().splitlines()]
    assert [e.seq for e in marked if isinstance(e, ResourceEvent)] == seqs[: len(marked)]


def test_sampler_stops_and_interval_zero_disables(tmp_path: Path, no_nvml: None):
    writer = EventWriter(tmp_path, stream=io.StringIO())
    sampler = ResourceSampler(writer, 0.05)
    sampler.start()
    _wait_for_events(tmp_path, 1)
    sampler.stop()
    stopped_at = len(_resource_events(tmp_path))
    disabled = ResourceSampler(writer, 0)
    disabled.start()
    assert disabled._thread is None
    time.sleep(0.3)  # not a timing assertion: proof that nothing more is written once stopped
    assert len(_resource_events(tmp_path)) == stopped_at
    writer.close()


def test_no_resource_or_progress_event_after_the_final_status(tmp_path: Path, no_nvml: None):
    writer = EventWriter(tmp_path, stream=io.StringIO())
    writer.emit("resource", cpu_pct=1.0, rss_mb=2.0, gpus=[])
    writer.emit("progress", step=3, total_steps=3, progress=1.0)
    writer.status("succeeded")
    assert writer.emit("resource", cpu_pct=1.0, rss_mb=2.0, gpus=[]) is None
    assert writer.emit("progress", step=3, total_steps=3) is None
    writer.log("a log line still goes out")
    writer.close()
    kinds = [e.type for e in read_events_file(tmp_path / EVENTS_FILE)]
    assert kinds == ["resource", "progress", "status", "log"]


def test_run_summary_peak_is_never_below_the_current_sample():
    summary = RunSummary()
    gpu = lambda used, util: {"index": 0, "mem_used_mb": used, "util_pct": util}  # noqa: E731
    first = summary.add(cpu_pct=100.0, rss_mb=900.0, gpus=[gpu(1000.0, 90.0)], own_peak_mb=500.0)
    assert first == {"peak_rss_mb": 900.0, "cpu_avg_pct": 100.0}
    # Memory falls: the peak keeps the earlier sample, and stays at least the current one.
    gpus = [gpu(400.0, 10.0)]
    second = summary.add(cpu_pct=50.0, rss_mb=300.0, gpus=gpus, own_peak_mb=500.0)
    assert second == {"peak_rss_mb": 900.0, "cpu_avg_pct": 75.0}
    assert gpus[0]["mem_peak_mb"] == 1000.0 and gpus[0]["util_avg_pct"] == 50.0
    # A spike between two samples that only the kernel saw (ru_maxrss) still raises the peak.
    third = summary.add(cpu_pct=0.0, rss_mb=950.0, gpus=[], own_peak_mb=1200.0)
    assert third["peak_rss_mb"] == 1200.0 and third["peak_rss_mb"] >= 950.0


def test_without_nvml_there_is_no_gpu_list_and_no_error(no_nvml: None):
    nvml = _Nvml(None)
    assert not nvml.available and nvml.sample() == []
    nvml.close()


def test_missing_driver_is_tolerated_too(monkeypatch: pytest.MonkeyPatch):
    def no_driver() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    monkeypatch.setattr(pynvml, "nvmlInit", no_driver)
    assert not _Nvml(None).available


def _fake_gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> list[int]:
    """NVML as a driver with `count` devices would answer (a GPU cannot exist here)."""
    shutdowns: list[int] = []

    def temperature(handle: int, sensor: int) -> int:
        if handle == 1:  # a device without a temperature sensor (e.g. a MIG slice)
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return 60 + handle

    fakes: dict[str, Any] = {
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: shutdowns.append(1),
        "nvmlDeviceGetCount": lambda: count,
        "nvmlDeviceGetHandleByIndex": lambda i: i,
        "nvmlDeviceGetUtilizationRates": lambda h: SimpleNamespace(gpu=10 * (h + 1), memory=0),
        "nvmlDeviceGetMemoryInfo": lambda h: SimpleNamespace(used=(h + 1) << 30, total=80 << 30, free=0),
        "nvmlDeviceGetTemperature": temperature,
    }
    for name, fake in fakes.items():
        monkeypatch.setattr(pynvml, name, fake)
    return shutdowns


def test_gpu_samples_follow_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    shutdowns = _fake_gpus(monkeypatch, 4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    writer = EventWriter(tmp_path, stream=io.StringIO())
    with ResourceSampler(writer, 0.05):
        event = _wait_for_events(tmp_path, 1)[0]
    writer.close()
    assert [g.index for g in event.gpus] == [1, 3]
    first, second = (g.model_dump() for g in event.gpus)
    assert first == {
        "index": 1,
        "util_pct": 20.0,
        "mem_used_mb": 2048.0,
        "mem_total_mb": 81920.0,
        "temp_c": None,
        "mem_peak_mb": 2048.0,
        "util_avg_pct": 20.0,
    }
    assert second["temp_c"] == 63.0 and second["util_pct"] == 40.0
    assert shutdowns == [1]


def test_empty_cuda_visible_devices_means_no_gpus(monkeypatch: pytest.MonkeyPatch):
    _fake_gpus(monkeypatch, 2)
    nvml = _Nvml(visible_gpu_indices({"CUDA_VISIBLE_DEVICES": ""}))
    assert not nvml.available and nvml.sample() == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", []), ("0", [0]), ("2, 0", [2, 0]), ("GPU-8d1c2e9a", None), ("MIG-1,0", None)],
)
def test_visible_gpu_indices(value: str | None, expected: list[int] | None):
    env = {} if value is None else {"CUDA_VISIBLE_DEVICES": value}
    assert visible_gpu_indices(env) == expected
