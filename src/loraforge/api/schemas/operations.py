"""Nodes (`GET /api/nodes`, `GET /api/nodes/{id}`, the drain routes' answers) and the operators' summary
(`GET /api/operations/summary`, `/ws/operations`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class NodeGpu(BaseModel):
    """A GPU's static facts (NVML at the node's last look)."""

    index: int = Field(description="NVML device index.")
    name: str | None = None
    memory_total_bytes: int | None = None
    slowdown_temperature_c: float | None = Field(
        default=None, description="Where the GPU slows itself down (NVML); null when it does not say."
    )


class GpuReadingNow(BaseModel):
    index: int
    name: str | None = None
    utilization: float | None = Field(default=None, description="Busy share of the last NVML period, 0..100.")
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    throttle: list[str] = Field(
        default_factory=list,
        description=(
            "Why the clocks are held down now (NVML reasons): sw_power_cap, hw_slowdown, "
            "sw_thermal_slowdown, hw_thermal_slowdown, hw_power_brake_slowdown, sync_boost, …"
        ),
    )


class NodeReading(BaseModel):
    """The node's newest telemetry reading."""

    ts: datetime
    cpu_percent: float | None = Field(default=None, description="System-wide, all cores together, 0..100.")
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    disk_free_bytes: int | None = Field(default=None, description="The disk of the node's data directory.")
    disk_total_bytes: int | None = None
    gpus: list[GpuReadingNow] = Field(default_factory=list)


class NodeHealthProblem(BaseModel):
    check: str = Field(description="The failing check, e.g. `disk_free`.")
    message: str


class NodeJob(BaseModel):
    id: int
    name: str
    status: str
    owner_id: int


class NodePublic(BaseModel):
    id: int
    name: str
    kind: str = Field(description="local (the server's host) | ray | ssh")
    address: str | None
    status: str = Field(description="ready | draining | drained | unhealthy | lost")
    drain_mode: str | None = Field(description="The operator's drain: finish | now; null when not drained.")
    drained_at: datetime | None
    health: list[NodeHealthProblem] = Field(description="Failing health checks; empty when healthy.")
    last_seen_at: datetime | None = Field(description="Time of the newest reading.")
    schedulable: bool = Field(description="Whether new jobs may be placed on it now.")
    cpus: int | None
    memory_total_bytes: int | None
    disk_total_bytes: int | None
    labels: dict[str, str]
    gpus: list[NodeGpu]
    gpu_note: str | None = Field(
        description="Why there is no GPU telemetry (no NVML on the node); else null."
    )
    latest: NodeReading | None
    jobs: list[NodeJob] = Field(description="Active jobs on the node that the caller may read.")


class NodeList(BaseModel):
    items: list[NodePublic]
    total: int


class GpuHistory(BaseModel):
    index: int
    utilization: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    temperature_c: float | None = None
    power_w: float | None = None


class HistoryPoint(BaseModel):
    ts: datetime
    cpu_percent: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    disk_free_bytes: int | None = None
    gpus: list[GpuHistory] = Field(default_factory=list)


class NodeDetail(NodePublic):
    history: list[HistoryPoint] = Field(
        description="Readings of the asked period, oldest first, at most 500 (averaged when more)."
    )


class SummaryGpu(BaseModel):
    index: int
    utilization: float | None = None
    temperature_c: float | None = None


class SummaryNode(BaseModel):
    id: int
    name: str
    status: str
    cpu_percent: float | None
    gpus: list[SummaryGpu]


class SummaryQueue(BaseModel):
    queued: int
    running: int = Field(description="Active jobs: starting, running or stopping.")
    avg_wait_seconds: float = Field(description="Mean time the queued jobs have waited so far.")
    oldest_wait_seconds: float


class SummaryAlerts(BaseModel):
    open: int = Field(description="Alerts raised and not yet acknowledged or resolved.")
    critical: int = Field(description="Of those, the critical ones.")


class SummaryStorage(BaseModel):
    used_bytes: int = Field(description="Datasets, runs and models of every user.")
    free_bytes: int = Field(description="Free on the data directory's disk.")


class SummaryUsage(BaseModel):
    month: str = Field(description="YYYY-MM (UTC).")
    jobs: int
    gpu_hours: float
    cpu_hours: float
    cost: float | None = Field(description="Null unless prices are configured.")
    currency: str


class SummaryFailure(BaseModel):
    job_id: int
    name: str
    finished_at: datetime | None
    code: str | None = Field(description="The failure's diagnosis code.")
    message: str | None
    node_name: str | None


class OperationsSummary(BaseModel):
    nodes: list[SummaryNode]
    queue: SummaryQueue
    alerts: SummaryAlerts
    storage: SummaryStorage
    usage_month: SummaryUsage
    recent_failures: list[SummaryFailure] = Field(description="The newest failed jobs (at most 10).")
