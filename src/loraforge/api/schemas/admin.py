"""Admin-only: user management, the stats dashboard and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from loraforge.api.schemas.auth import Email, NewPassword, UserPublic
from loraforge.api.schemas.common import RequestModel, ResponseModel
from loraforge.db.models import Role


class AdminUserView(UserPublic):
    updated_at: datetime


class UserPage(BaseModel):
    items: list[AdminUserView]
    total: int
    page: int
    page_size: int


class AdminUserUpdate(RequestModel):
    role: Role | None = None
    disabled: bool | None = None
    email: Email | None = None


class PasswordResetRequest(RequestModel):
    password: NewPassword | None = Field(
        default=None, description="The new password; omit to generate a temporary one."
    )
    revoke_api_keys: bool = Field(
        default=True,
        description=(
            "Also revoke the user's API keys (default: a reset usually means the account was lost or "
            "taken over, and keys made by whoever held it must stop working too)."
        ),
    )


class PasswordResetResponse(BaseModel):
    temporary_password: str | None = Field(
        description="The generated password (shown once), or null when a password was given."
    )


class RecentLoginView(ResponseModel):
    user_id: int | None
    username: str
    at: datetime
    ip: str


class StatsResponse(ResponseModel):
    users_total: int
    users_by_role: dict[str, int]
    users_active: int
    users_disabled: int
    api_keys_active: int
    logins_last_24h: int
    failed_logins_last_24h: int
    recent_logins: list[RecentLoginView]


class AuditEntry(ResponseModel):
    id: int
    ts: datetime
    actor_id: int | None
    actor_username: str | None
    action: str
    target_type: str | None
    target_id: str | None
    ip: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntry]
    total: int
    page: int
    page_size: int
