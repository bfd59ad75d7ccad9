"""The NVML path of node telemetry, against a stand-in for the `pynvml` module (nvml_standin.py): the
engine's NVML reader, the node sampler, the operations loop, the nodes API and the /metrics GPU gauges
all run for real on top of it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Api
from fastapi import FastAPI
from fastapi.testclient import TestClient
from nvml_standin import GPU_IDLE, HW_THERMAL, SW_POWER_CAP, StandinGpu, StandinState, installed
from prometheus_client.parser import text_string_to_metric_families

from loraforge.engine.resources import _Nvml, throttle_names
from loraforge.executors import node_sampler
from loraforge.settings import Settings


def two_gpus() -> StandinState:
    return StandinState(
        gpus=[
            StandinGpu(
                utilization=87,
                memory_used=30 * 1024**3,
                temperature=83,
                power_mw=312_456,
                reasons=HW_THERMAL | SW_POWER_CAP | GPU_IDLE,
            ),
            # A device that answers neither temperature nor power (a MIG slice, a vGPU), named in bytes.
            StandinGpu(
                name="NVIDIA A100-SXM4-40GB",
                name_as_bytes=True,
                utilization=3,
                memory_used=1024**3,
                memory_total=40 * 1024**3,
                temperature=None,
                power_mw=None,
                slowdown=None,
            ),
        ]
    )


def test_the_sampler_reads_every_gpu_once_nvml_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NVML ignores CUDA_VISIBLE_DEVICES: a Ray actor without GPUs still reports its node's.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with installed(two_gpus()) as state:
        first = node_sampler.sample(tmp_path)
        second = node_sampler.sample(tmp_path)
        info = node_sampler.static_info(tmp_path)
        assert node_sampler.nvml_note() is None
        assert state.inits == 1  # opened once, kept for every reading
    assert state.shutdowns == 1  # closed when the handle was dropped

    assert first["gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "utilization": 87.0,
            "memory_used_bytes": 30 * 1024**3,
            "memory_total_bytes": 80 * 1024**3,
            "temperature_c": 83.0,
            "power_w": 312.5,
            "throttle": ["sw_power_cap", "hw_thermal_slowdown"],  # idle is not throttling
        },
        {
            "index": 1,
            "name": "NVIDIA A100-SXM4-40GB",
            "utilization": 3.0,
            "memory_used_bytes": 1024**3,
            "memory_total_bytes": 40 * 1024**3,
            "temperature_c": None,
            "power_w": None,
            "throttle": [],
        },
    ]
    assert second["gpus"] == first["gpus"]
    assert info["gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "memory_total_bytes": 80 * 1024**3,
            "slowdown_temperature_c": 87.0,
        },
        {
            "index": 1,
            "name": "NVIDIA A100-SXM4-40GB",
            "memory_total_bytes": 40 * 1024**3,
            "slowdown_temperature_c": None,
        },
    ]
    assert info["gpu_note"] is None


def test_without_nvml_the_node_says_why(tmp_path: Path) -> None:
    with installed(StandinState(gpus=[], missing=True)):
        assert node_sampler.sample(tmp_path)["gpus"] == []
        info = node_sampler.static_info(tmp_path)
        assert info["gpus"] == [] and info["gpu_note"] == node_sampler.NVML_MISSING_NOTE
        assert node_sampler.nvml_note() == "NVML not available on this node: no GPU telemetry"
    # NVML working with no GPU at all is not "missing".
    with installed(StandinState(gpus=[])):
        assert node_sampler.nvml_note() is None and node_sampler.sample(tmp_path)["gpus"] == []


def test_engine_resource_events_keep_their_shape() -> None:
    """Jobs' `resource` events are read by the job page and stored: the node fields are not added there."""
    with installed(two_gpus()):
        nvml = _Nvml([0])
        try:
            assert nvml.sample() == [
                {
                    "index": 0,
                    "util_pct": 87.0,
                    "mem_used_mb": 30720.0,
                    "mem_total_mb": 81920.0,
                    "temp_c": 83.0,
                }
            ]
        finally:
            nvml.close()


def test_throttle_reason_names() -> None:
    assert throttle_names(0) == [] and throttle_names(GPU_IDLE) == []
    assert throttle_names(0x8 | 0x80 | 0x20) == [
        "hw_slowdown",
        "sw_thermal_slowdown",
        "hw_power_brake_slowdown",
    ]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"scheduler_enabled": False, "telemetry_interval_seconds": 0.5})


@pytest.fixture
def gpus() -> Iterator[StandinState]:
    with installed(two_gpus()) as state:
        yield state


@pytest.fixture
def client(app: FastAPI, gpus: StandinState) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def scrape(
    client: TestClient, headers: dict[str, str]
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics, parsed: (sample name, sorted labels) → value."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _local(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = client.get("/api/nodes", headers=headers).json()["items"]
        node = next((n for n in items if n["kind"] == "local"), None)
        if node is not None and node["latest"] is not None and node["latest"]["gpus"]:
            return node
        time.sleep(0.1)
    raise AssertionError("no GPU reading of the local node after 30 s")


def test_gpus_reach_the_nodes_api_and_metrics(api: Api, client: TestClient, gpus: StandinState) -> None:
    admin = api.admin()
    node = _local(client, api.account("alice").headers)
    assert node["gpu_note"] is None
    assert [g["slowdown_temperature_c"] for g in node["gpus"]] == [87.0, None]
    now = node["latest"]["gpus"]
    assert now[0]["throttle"] == ["sw_power_cap", "hw_thermal_slowdown"]
    assert now[0]["power_w"] == 312.5 and now[1]["temperature_c"] is None

    # The GPU gets hotter and busier: the next round stores it, /metrics shows it.
    gpus.gpus[0].temperature = 91
    gpus.gpus[0].utilization = 100
    name = node["name"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        gauges = scrape(client, admin.headers)
        if gauges.get(("loraforge_gpu_temperature_celsius", (("gpu", "0"), ("node", name)))) == 91.0:
            break
        time.sleep(0.1)

    def gpu(metric: str, index: int) -> float | None:
        return gauges.get((metric, (("gpu", str(index)), ("node", name))))

    assert gpu("loraforge_gpu_temperature_celsius", 0) == 91.0
    assert gpu("loraforge_gpu_utilization_percent", 0) == 100.0
    assert gpu("loraforge_gpu_memory_used_bytes", 0) == 30 * 1024**3
    assert gpu("loraforge_gpu_power_watts", 0) == 312.5
    # GPU 1 reads no temperature or power: those series are absent, not 0.
    assert gpu("loraforge_gpu_utilization_percent", 1) == 3.0
    assert gpu("loraforge_gpu_memory_used_bytes", 1) == 1024**3
    assert gpu("loraforge_gpu_temperature_celsius", 1) is None
    assert gpu("loraforge_gpu_power_watts", 1) is None
    assert gauges[("loraforge_node_up", (("node", name),))] == 1.0

    detail = client.get(f"/api/nodes/{node['id']}", headers=admin.headers).json()
    assert detail["history"][-1]["gpus"][0]["temperature_c"] == 91.0
    assert set(detail["history"][-1]["gpus"][0]) == {
        "index",
        "utilization",
        "memory_used_bytes",
        "memory_total_bytes",
        "temperature_c",
        "power_w",
    }
