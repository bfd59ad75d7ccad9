"""A stand-in for the `pynvml` module (nvidia-ml-py): NVML as a driver with some GPUs would answer.

There is no GPU on the test machines. Only the module is replaced (`sys.modules["pynvml"]`, which the
engine's reader imports when it starts); everything above it (the engine's NVML reader, the node
sampler, the operations loop, the database, the API and /metrics) runs for real. The functions keep
NVML's calling conventions: handles from `nvmlDeviceGetHandleByIndex`, memory in bytes, power in
milliwatts, clock-event reasons as a bit mask, errors as `NVMLError` with a code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_LIBRARY_NOT_FOUND = 12

# NVML's clock-event reason bits (nvml.h).
HW_SLOWDOWN = 0x8
SW_THERMAL = 0x20
HW_THERMAL = 0x40
GPU_IDLE = 0x1
SW_POWER_CAP = 0x4


@dataclass
class StandinGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    utilization: int = 0
    memory_used: int = 0
    memory_total: int = 80 * 1024**3
    temperature: int | None = 40  # None: no sensor (NOT_SUPPORTED), like a MIG slice
    power_mw: int | None = 100_000
    reasons: int = 0
    slowdown: int | None = 87
    name_as_bytes: bool = False  # older bindings answer bytes
    calls: list[str] = field(default_factory=list)


@dataclass
class StandinState:
    gpus: list[StandinGpu]
    inits: int = 0
    shutdowns: int = 0
    missing: bool = False  # nvmlInit fails as without a driver library


def make_module(state: StandinState) -> ModuleType:
    module = ModuleType("pynvml")

    class NVMLError(Exception):
        def __init__(self, value: int) -> None:
            super().__init__(value)
            self.value = value

    def not_supported() -> NVMLError:
        return NVMLError(NVML_ERROR_NOT_SUPPORTED)

    def init() -> None:
        if state.missing:
            raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND)
        state.inits += 1

    def shutdown() -> None:
        state.shutdowns += 1

    def handle(index: int) -> StandinGpu:
        if not 0 <= index < len(state.gpus):
            raise NVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT
        return state.gpus[index]

    def name(gpu: StandinGpu) -> str | bytes:
        return gpu.name.encode() if gpu.name_as_bytes else gpu.name

    def temperature(gpu: StandinGpu, sensor: int) -> int:
        if sensor != 0 or gpu.temperature is None:
            raise not_supported()
        return gpu.temperature

    def power(gpu: StandinGpu) -> int:
        if gpu.power_mw is None:
            raise not_supported()
        return gpu.power_mw

    def threshold(gpu: StandinGpu, kind: int) -> int:
        if kind != 1 or gpu.slowdown is None:
            raise not_supported()
        return gpu.slowdown

    functions: dict[str, Any] = {
        "NVMLError": NVMLError,
        "NVML_TEMPERATURE_GPU": 0,
        "NVML_TEMPERATURE_THRESHOLD_SHUTDOWN": 0,
        "NVML_TEMPERATURE_THRESHOLD_SLOWDOWN": 1,
        "nvmlInit": init,
        "nvmlShutdown": shutdown,
        "nvmlDeviceGetCount": lambda: len(state.gpus),
        "nvmlDeviceGetHandleByIndex": handle,
        "nvmlDeviceGetName": name,
        "nvmlDeviceGetUtilizationRates": lambda g: SimpleNamespace(gpu=g.utilization, memory=0),
        "nvmlDeviceGetMemoryInfo": lambda g: SimpleNamespace(
            used=g.memory_used, total=g.memory_total, free=g.memory_total - g.memory_used
        ),
        "nvmlDeviceGetTemperature": temperature,
        "nvmlDeviceGetPowerUsage": power,
        "nvmlDeviceGetCurrentClocksEventReasons": lambda g: g.reasons,
        "nvmlDeviceGetTemperatureThreshold": threshold,
    }
    for key, value in functions.items():
        setattr(module, key, value)
    return module


@contextmanager
def installed(state: StandinState) -> Iterator[StandinState]:
    """`pynvml` is the stand-in inside the block; the node sampler's NVML handle is reopened on both
    sides of it so it never outlives the block."""
    from loraforge.executors import node_sampler

    saved = sys.modules.get("pynvml")
    node_sampler.reset()
    sys.modules["pynvml"] = make_module(state)
    try:
        yield state
    finally:
        node_sampler.reset()
        if saved is not None:
            sys.modules["pynvml"] = saved
        else:
            sys.modules.pop("pynvml", None)
