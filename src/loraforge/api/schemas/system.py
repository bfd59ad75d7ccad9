"""The host reading of `GET /api/system/host` (the dashboard's machine panel)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GpuReading(BaseModel):
    index: int = Field(description="NVML device index.")
    util_pct: float | None = Field(default=None, description="Busy share of the last sample period, 0..100.")
    mem_used_mb: float | None = None
    mem_total_mb: float | None = None
    temp_c: float | None = None


class DiskReading(BaseModel):
    total_bytes: int
    free_bytes: int


class HostInfo(BaseModel):
    cpu_count: int = Field(description="Logical CPUs.")
    cpu_percent: float = Field(description="System-wide CPU use since the previous reading, 0..100.")
    memory_total_bytes: int
    memory_used_bytes: int = Field(description="Total minus what is available to new processes.")
    gpus: list[GpuReading] = Field(description="Empty without NVIDIA GPUs or their driver.")
    disk: DiskReading | None = Field(description="The disk of the data directory; null when unreadable.")
