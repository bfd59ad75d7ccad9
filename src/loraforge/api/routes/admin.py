"""Admin-only: user management, stats, audit log. Every route depends on AdminUser (else 403)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query, status

from loraforge.api.deps import AdminUser, ClientIP, SessionDep
from loraforge.api.ids import Id
from loraforge.api.paging import PageSize
from loraforge.api.schemas.admin import (
    AdminUserUpdate,
    AdminUserView,
    AuditEntry,
    AuditPage,
    PasswordResetRequest,
    PasswordResetResponse,
    StatsResponse,
    UserPage,
)
from loraforge.db.models import Role
from loraforge.services.accounts import stats, user_admin
from loraforge.services.platform import audit

router = APIRouter(prefix="/admin", tags=["admin"])

# Not `api/paging.Page`: these routes published a lower bound (1,000,000) in the OpenAPI document and
# the generated client, so they keep it.
Page = Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number.")]


def _as_utc(value: datetime | None) -> datetime | None:
    # A timestamp without an offset is read as UTC, the server's only time zone.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get("/users", response_model=UserPage, operation_id="admin_list_users")
def list_users(
    _admin: AdminUser,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=100, description="Part of a username or email.")] = None,
    role: Role | None = None,
    disabled: bool | None = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> UserPage:
    found = user_admin.list_users(
        session, q=q, role=role, disabled=disabled, offset=(page - 1) * page_size, limit=page_size
    )
    return UserPage(
        items=[AdminUserView.model_validate(user) for user in found.items],
        total=found.total,
        page=page,
        page_size=page_size,
    )


@router.patch("/users/{user_id}", response_model=AdminUserView, operation_id="admin_update_user")
def update_user(
    user_id: Id, body: AdminUserUpdate, admin: AdminUser, session: SessionDep, ip: ClientIP
) -> AdminUserView:
    """Change role, disabled flag or email. The last active admin cannot be demoted or disabled."""
    updated = user_admin.admin_update_user(
        session, actor=admin, user_id=user_id, role=body.role, disabled=body.disabled, email=body.email, ip=ip
    )
    return AdminUserView.model_validate(updated)


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="admin_delete_user")
def delete_user(user_id: Id, admin: AdminUser, session: SessionDep, ip: ClientIP) -> None:
    """Delete a user with their sessions and API keys. Never yourself, never the last admin."""
    user_admin.delete_user(session, actor=admin, user_id=user_id, ip=ip)


@router.post(
    "/users/{user_id}/reset-password",
    response_model=PasswordResetResponse,
    operation_id="admin_reset_password",
)
def reset_password(
    user_id: Id,
    admin: AdminUser,
    session: SessionDep,
    ip: ClientIP,
    body: Annotated[PasswordResetRequest | None, Body()] = None,
) -> PasswordResetResponse:
    """Set a new password, or generate a temporary one (returned once).

    Logs the user out everywhere and, unless `revoke_api_keys` is false, revokes their API keys.
    """
    request = body or PasswordResetRequest()
    temporary = user_admin.reset_password(
        session,
        actor=admin,
        user_id=user_id,
        new_password=request.password,
        revoke_api_keys=request.revoke_api_keys,
        ip=ip,
    )
    return PasswordResetResponse(temporary_password=temporary)


@router.get("/stats", response_model=StatsResponse, operation_id="admin_get_stats")
def get_stats(_admin: AdminUser, session: SessionDep) -> StatsResponse:
    return StatsResponse.model_validate(stats.stats(session))


@router.get("/audit", response_model=AuditPage, operation_id="admin_list_audit")
def list_audit(
    _admin: AdminUser,
    session: SessionDep,
    actor: Annotated[str | None, Query(max_length=254, description="Username of the actor.")] = None,
    action: Annotated[
        str | None,
        Query(
            max_length=64, description="An action like `user.deleted`, or a group ending in `.` like `auth.`."
        ),
    ] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[datetime | None, Query(description="Only entries at or after this time.")] = None,
    until: Annotated[datetime | None, Query(description="Only entries at or before this time.")] = None,
    page: Page = 1,
    page_size: PageSize = 50,
) -> AuditPage:
    found = audit.search(
        session,
        actor=actor,
        action=action,
        target_type=target_type,
        since=_as_utc(since),
        until=_as_utc(until),
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    return AuditPage(
        items=[AuditEntry.model_validate(entry) for entry in found.items],
        total=found.total,
        page=page,
        page_size=page_size,
    )
