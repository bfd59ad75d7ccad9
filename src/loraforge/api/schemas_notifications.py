"""Request and response models of notifications, their settings, retention and storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from loraforge.api.schemas import RequestModel


class NotificationPublic(BaseModel):
    id: int
    kind: str = Field(description="job.started | job.succeeded | job.failed | job.cancelled")
    title: str
    body: str
    job_id: int | None
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationPublic]
    total: int
    unread: int = Field(description="The caller's unread notifications (all pages).")
    page: int
    page_size: int


class MarkRead(RequestModel):
    ids: list[int] | None = Field(default=None, max_length=1000, description="Notification ids to mark read.")
    all: bool = Field(default=False, description="Mark every notification read.")

    @model_validator(mode="after")
    def _one_of(self) -> MarkRead:
        if not self.all and self.ids is None:
            raise ValueError("give `ids` or `all: true`")
        return self


class MarkedRead(BaseModel):
    marked: int
    unread: int


class NotificationSettings(BaseModel):
    webhook_url: str | None = Field(
        default=None, description="http(s) URL that receives a JSON POST per notification; null: off."
    )


class NotificationSettingsUpdate(RequestModel):
    webhook_url: str | None = Field(default=None, max_length=2000, description="null or empty: turn off.")


class WebhookTest(RequestModel):
    webhook_url: str | None = Field(
        default=None, max_length=2000, description="Test this URL instead of the saved one (not saved)."
    )


class WebhookTestResult(BaseModel):
    delivered: bool
    status_code: int | None = Field(description="The endpoint's HTTP status, when it answered.")
    error: str | None = Field(description="Why it was not delivered (never the endpoint's response body).")


# ---- retention / storage ---------------------------------------------------------------------------------


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
