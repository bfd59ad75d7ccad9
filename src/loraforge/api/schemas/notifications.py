"""Notifications: the caller's list, marking read, webhook settings and a test delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from loraforge.api.ids import Id
from loraforge.api.schemas.common import RequestModel


class NotificationPublic(BaseModel):
    id: int
    kind: str = Field(description="job.started | job.succeeded | job.failed | job.cancelled | job.stopped")
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
    ids: list[Id] | None = Field(default=None, max_length=1000, description="Notification ids to mark read.")
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
