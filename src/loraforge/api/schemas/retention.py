"""Retention and storage: what a sweep removed, and the disk usage report for operators and admins."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RemovedFiles(BaseModel):
    job_id: int
    name: str
    owner_id: int
    bytes_freed: int
    removed: list[str] = Field(description="Sub-folders of the run directory that were removed.")


class RetentionRun(BaseModel):
    removed: list[RemovedFiles]
    bytes_freed: int


class StorageAreas(BaseModel):
    runs: int
    datasets: int
    models: int
    job_metrics: int
    uploads: int


class StorageUser(BaseModel):
    user_id: int
    username: str | None
    runs_bytes: int
    datasets_bytes: int
    total_bytes: int
    jobs: int


class StorageJob(BaseModel):
    job_id: int
    name: str
    owner_id: int
    username: str | None
    status: str
    bytes: int
    pinned: bool
    finished_at: datetime | None
    files_removed_at: datetime | None


class StorageReport(BaseModel):
    total_bytes: int | None = Field(description="Size of the disk holding the data directory.")
    used_bytes: int | None
    free_bytes: int | None
    areas: StorageAreas = Field(description="Bytes under each folder of the data directory.")
    users: list[StorageUser] = Field(description="Per-user totals, largest first.")
    largest_jobs: list[StorageJob]
    retention_days: float
