"""Usage, quotas and prices: my usage, the admins' report, one user's quota, the prices."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from loraforge.api.schemas.common import RequestModel


class UsageTotals(BaseModel):
    jobs: int = Field(description="Distinct jobs with an attempt that started in the month.")
    wall_hours: float
    cpu_hours: float = Field(description="CPU time of the engine's process tree (1 core busy 1 hour = 1).")
    gpu_hours: float = Field(description="GPUs held x wall time.")
    peak_memory_bytes: int = Field(description="The highest resident memory of any one attempt.")
    tokens: int = Field(description="Tokens trained on (non-padding).")
    cost: float | None = Field(description="At the prices in force when each attempt ran; null: no prices.")
    currency: str


class QuotaLimits(BaseModel):
    gpu_hours_per_month: float | None = Field(description="null: no limit.")
    max_running_jobs: int | None = Field(description="Jobs active at once (null only in overrides).")
    storage_bytes: int | None = Field(description="null: no limit.")


class MyQuota(QuotaLimits):
    action: str = Field(description="`refuse`: over a quota a job is refused at submit; `wait`: it waits.")


class UsageMonth(BaseModel):
    month: str = Field(description="YYYY-MM (UTC).")
    gpu_hours: float
    cpu_hours: float
    cost: float | None


class UsageItem(BaseModel):
    job_id: int | None = Field(description="null once the job was deleted (its usage is kept).")
    job_name: str | None
    attempt: int
    node_name: str | None
    started_at: datetime | None
    finished_at: datetime | None = Field(description="null while the attempt runs.")
    wall_seconds: float
    cpu_hours: float
    gpu_hours: float
    gpu_count: int
    peak_memory_bytes: int
    tokens: int
    cost: float | None


class MyUsage(BaseModel):
    month: str
    totals: UsageTotals
    storage_bytes: int = Field(description="What your datasets, jobs, models and files take now.")
    quota: MyQuota
    months: list[UsageMonth] = Field(description="The 12 months ending with `month`, oldest first.")
    items: list[UsageItem] = Field(
        description="Attempts that started in the month, newest first (at most 1000)."
    )
    items_total: int


class UsageReportRow(BaseModel):
    user_id: int
    username: str
    jobs: int
    wall_hours: float
    cpu_hours: float
    gpu_hours: float
    tokens: int
    storage_bytes: int
    cost: float | None


class UsageReportTotals(BaseModel):
    jobs: int
    wall_hours: float
    cpu_hours: float
    gpu_hours: float
    tokens: int
    storage_bytes: int
    cost: float | None


class UsageReport(BaseModel):
    month: str
    rows: list[UsageReportRow]
    totals: UsageReportTotals
    currency: str


class QuotaUpdate(RequestModel):
    """A user's overrides; null (or left out) means the default from the server's settings."""

    gpu_hours_per_month: float | None = Field(default=None, ge=0.0, le=1e9)
    max_running_jobs: int | None = Field(default=None, ge=0, le=10_000)
    storage_bytes: int | None = Field(default=None, ge=0, le=2**62)


class UserQuotaView(QuotaLimits):
    user_id: int
    effective: QuotaLimits = Field(description="What is in force: the override, else the default.")
    defaults: QuotaLimits = Field(description="The server's defaults (LORAFORGE_QUOTA_*).")
    action: str


class PricesBody(RequestModel):
    """null resets a price to the server's default (LORAFORGE_PRICE_*)."""

    gpu_hour: float | None = Field(default=None, ge=0.0, le=1e9)
    cpu_hour: float | None = Field(default=None, ge=0.0, le=1e9)
    currency: str | None = Field(default=None, min_length=1, max_length=8)


class PricesDefaults(BaseModel):
    gpu_hour: float | None
    cpu_hour: float | None
    currency: str


class PricesView(PricesDefaults):
    defaults: PricesDefaults = Field(description="The server's defaults (LORAFORGE_PRICE_*).")
