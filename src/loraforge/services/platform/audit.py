"""The audit log: `record(...)` for every sensitive action, `search(...)` for the admin page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.models import AuditLog, User


class AuditAction(StrEnum):
    """Every action the platform records. New capabilities add members here."""

    login_succeeded = "auth.login_succeeded"
    login_failed = "auth.login_failed"
    login_throttled = "auth.login_throttled"
    logout = "auth.logout"
    refresh_reuse_detected = "auth.refresh_reuse_detected"
    user_registered = "user.registered"
    user_created = "user.created"
    user_updated = "user.updated"
    profile_updated = "user.profile_updated"
    password_changed = "user.password_changed"  # noqa: S105  (action names, not secrets)
    password_reset = "user.password_reset"  # noqa: S105
    role_changed = "user.role_changed"
    user_disabled = "user.disabled"
    user_enabled = "user.enabled"
    user_deleted = "user.deleted"
    api_key_created = "api_key.created"
    api_key_revoked = "api_key.revoked"
    dataset_created = "dataset.created"
    dataset_updated = "dataset.updated"
    dataset_deleted = "dataset.deleted"
    dataset_version_created = "dataset.version_created"
    dataset_preprocessed = "dataset.preprocessed"
    dataset_rolled_back = "dataset.rolled_back"
    job_created = "job.created"
    job_started = "job.started"
    job_stopped = "job.stopped"
    job_cancelled = "job.cancelled"
    job_deleted = "job.deleted"
    # templates, notifications, retention
    template_created = "template.created"
    template_updated = "template.updated"
    template_deleted = "template.deleted"
    notification_settings_changed = "notification.settings_changed"
    job_pinned = "job.pinned"
    job_unpinned = "job.unpinned"
    job_files_removed = "job.files_removed"
    retention_run = "retention.run"
    job_resumed = "job.resumed"
    job_priority_changed = "job.priority_changed"
    queue_reordered = "queue.reordered"
    # models, inference, OpenAI files, providers, chat
    model_registered = "model.registered"
    model_updated = "model.updated"
    model_deleted = "model.deleted"
    model_version_created = "model.version_created"
    model_version_updated = "model.version_updated"
    model_merge_requested = "model.merge_requested"
    model_export_requested = "model.export_requested"
    model_pushed = "model.pushed"
    deployment_started = "deployment.started"
    deployment_stopped = "deployment.stopped"
    provider_created = "provider.created"
    provider_updated = "provider.updated"
    provider_deleted = "provider.deleted"
    file_uploaded = "file.uploaded"
    file_deleted = "file.deleted"
    conversation_deleted = "conversation.deleted"
    prompt_created = "prompt.created"
    prompt_updated = "prompt.updated"
    prompt_deleted = "prompt.deleted"
    # evaluations
    evaluation_created = "evaluation.created"
    evaluation_updated = "evaluation.updated"
    evaluation_started = "evaluation.started"
    evaluation_cancelled = "evaluation.cancelled"
    evaluation_deleted = "evaluation.deleted"
    # operations
    node_drained = "node.drained"
    node_undrained = "node.undrained"
    job_migrated = "job.migrated"
    alert_acknowledged = "alert.acknowledged"
    alert_resolved = "alert.resolved"
    ops_settings_changed = "ops.settings_changed"
    quota_changed = "user.quota_changed"
    password_reset_requested = "user.password_reset_requested"  # noqa: S105
    password_reset_completed = "user.password_reset_completed"  # noqa: S105
    user_invited = "user.invited"
    invitation_accepted = "user.invitation_accepted"


def record(
    session: Session,
    *,
    action: AuditAction,
    actor: User | None,
    target_type: str | None = None,
    target_id: int | str | None = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit row to the session; it commits with the action it describes."""
    entry = AuditLog(
        action=action.value,
        actor_id=actor.id if actor is not None else None,
        actor_username=actor.username if actor is not None else None,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        ip=ip,
        details=details or {},
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditLog]
    total: int


def search(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> AuditPage:
    """Newest first. `actor` matches the username (case-insensitive); `action` an exact action or,
    ending in a dot like `auth.`, every action in that group."""
    query = select(AuditLog)
    if actor:
        query = query.where(func.lower(AuditLog.actor_username) == actor.lower())
    if action:
        if action.endswith("."):
            query = query.where(AuditLog.action.startswith(action, autoescape=True))
        else:
            query = query.where(AuditLog.action == action)
    if target_type:
        query = query.where(AuditLog.target_type == target_type)
    if since is not None:
        query = query.where(AuditLog.ts >= since)
    if until is not None:
        query = query.where(AuditLog.ts <= until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(AuditLog.ts.desc(), AuditLog.id.desc()).offset(offset).limit(limit)
    ).all()
    return AuditPage(items=list(rows), total=total)
