"""The node sampler on the real host: psutil, the data directory's disk, NVML as the machine has it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

from loraforge.executors import node_sampler


def test_a_reading_of_this_machine(tmp_path: Path) -> None:
    node_sampler.reset()
    reading = node_sampler.sample(tmp_path)
    assert set(reading) == {
        "cpu_percent",
        "memory_used_bytes",
        "memory_total_bytes",
        "disk_free_bytes",
        "disk_total_bytes",
        "gpus",
    }
    assert 0.0 <= reading["cpu_percent"] <= 100.0
    assert reading["memory_total_bytes"] == psutil.virtual_memory().total
    assert 0 < reading["memory_used_bytes"] <= reading["memory_total_bytes"]
    usage = shutil.disk_usage(tmp_path)
    assert reading["disk_total_bytes"] == usage.total
    assert 0 < reading["disk_free_bytes"] <= usage.total
    assert isinstance(reading["gpus"], list)
    if not node_sampler.nvml_available():
        assert reading["gpus"] == [] and node_sampler.nvml_note() == node_sampler.NVML_MISSING_NOTE


def test_a_data_directory_not_created_yet_reads_its_parent_disk(tmp_path: Path) -> None:
    missing = tmp_path / "not" / "yet" / "data"
    reading = node_sampler.sample(missing)
    assert reading["disk_total_bytes"] == shutil.disk_usage(tmp_path).total
    info = node_sampler.static_info(missing)
    assert info["disk_total_bytes"] == reading["disk_total_bytes"]
    assert info["cpus"] == psutil.cpu_count() and info["labels"] == {}
    assert info["memory_total_bytes"] == psutil.virtual_memory().total


def test_cpu_use_is_measured_between_two_readings(tmp_path: Path) -> None:
    """A process that burnt CPU time between two readings makes the second one non-zero (system-wide)."""
    node_sampler.sample(tmp_path)  # the baseline
    spin = "import time\nt = time.time()\nwhile time.time() - t < 60: pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin])
    try:
        process = psutil.Process(spinner.pid)
        while sum(process.cpu_times()[:2]) < 0.3:  # the machine's busy time grew by at least this much
            time.sleep(0.02)
        reading = node_sampler.sample(tmp_path)
    finally:
        spinner.kill()
        spinner.wait()
    assert 0.0 < reading["cpu_percent"] <= 100.0
