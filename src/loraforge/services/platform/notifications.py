"""Notifications: stored per user, pushed live, optionally POSTed to the user's webhook.

`job_status_changed` is called by `services.jobs.states.transition` (the one place statuses change), inside
the transition's transaction, so a notification exists exactly when the change is committed.

Live push: the per-user WebSocket polls the database (about once a second, so a change made by
another server process arrives too) and is woken at once through the app's `EventHub`: after a
commit that added notifications, `{"type": "wake"}` is published on `user:<id>` of every hub
attached with `attach_hub` (the background task attaches the app's hub while the app runs).

The webhook URL is a user secret (it often carries a token): it is never logged or audited.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import Job, JobStatus, Notification, User
from loraforge.services.platform import audit, outbound
from loraforge.services.platform.audit import AuditAction
from loraforge.services.platform.event_hub import EventHub, user_channel
from loraforge.settings import Settings

# target status -> (kind, title template). Only these changes notify ("started" = entering running).
_KINDS: dict[str, tuple[str, str]] = {
    "running": ("job.started", "Job “{name}” started"),
    "succeeded": ("job.succeeded", "Job “{name}” succeeded"),
    "failed": ("job.failed", "Job “{name}” failed"),
    "cancelled": ("job.cancelled", "Job “{name}” was cancelled"),
    "stopped": ("job.stopped", "Job “{name}” was stopped"),
}
KINDS = tuple(kind for kind, _ in _KINDS.values())
_PENDING_KEY = "loraforge.notified_users"

_hubs: set[EventHub] = set()
_hubs_lock = threading.Lock()


def attach_hub(hub: EventHub) -> None:
    """Publish wake-ups to `hub` after commits that add notifications (until `detach_hub`)."""
    with _hubs_lock:
        _hubs.add(hub)


def detach_hub(hub: EventHub) -> None:
    with _hubs_lock:
        _hubs.discard(hub)


def _publish_after_commit(session: Session) -> None:
    users: set[int] = session.info.pop(_PENDING_KEY, set())
    with _hubs_lock:
        hubs = list(_hubs)
    for hub in hubs:
        for user_id in users:
            hub.publish(user_channel(user_id), {"type": "wake"})


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def _body(job: Job, target: str) -> str:
    if target == "failed":
        error = job.error or {}
        parts = [str(error.get("message") or "the engine stopped with an error")]
        if error.get("suggestion"):
            parts.append(f"Suggestion: {error['suggestion']}")
        return " ".join(parts)[:4000]
    if target == "cancelled":
        error = job.error or {}
        return str(error.get("message") or "Cancelled before it finished; nothing more was saved.")[:4000]
    if target == "stopped":  # where it stopped and the checkpoint that resumes it (lifecycle.finish_stop)
        error = job.error or {}
        return str(error.get("message") or "Stopped; resume it from its latest checkpoint.")[:4000]
    if target == "succeeded":
        return "Training finished; its checkpoints and outputs are on the job page."
    return "Training is running."


def job_status_changed(session: Session, job: Job, previous: JobStatus, target: JobStatus) -> None:
    """Record a notification for the job's owner when the change is one people care about
    (entering running, succeeded, failed, cancelled, stopped); mark it for webhook delivery when the
    owner has a webhook URL. Added to the caller's transaction: nothing exists unless it commits.
    A stopped job's `data` also names the checkpoint that resumes it (None when there is none)."""
    status = str(getattr(target, "value", target))
    if status not in _KINDS:
        return
    kind, title = _KINDS[status]
    owner = session.get(User, job.owner_id)
    if owner is None:
        return
    error = job.error or {}
    data: dict[str, Any] = {"status": status, "previous": str(getattr(previous, "value", previous))}
    if status in ("failed", "cancelled", "stopped") and error.get("code"):
        data["error_code"] = error["code"]
    if status == "stopped":
        data["checkpoint"] = (error.get("details") or {}).get("checkpoint")
    now = utcnow()
    session.add(
        Notification(
            user_id=owner.id,
            job_id=job.id,
            kind=kind,
            title=title.format(name=job.name)[:300],
            body=_body(job, status),
            data=data,
            created_at=now,
            webhook_status="pending" if owner.webhook_url else None,
            webhook_attempts=0,
            webhook_next_at=now if owner.webhook_url else None,
        )
    )
    pending: set[int] = session.info.setdefault(_PENDING_KEY, set())
    if not pending:
        event.listen(session, "after_commit", _publish_after_commit, once=True)
        event.listen(session, "after_rollback", _drop_pending, once=True)
    pending.add(owner.id)


# ---- reading and marking ------------------------------------------------------------------------


def notification_json(n: Notification) -> dict[str, Any]:
    """The public shape (REST items, WebSocket messages, webhook body minus read_at)."""
    return {
        "id": n.id,
        "kind": n.kind,
        "title": n.title,
        "body": n.body,
        "job_id": n.job_id,
        "data": n.data or {},
        "created_at": n.created_at,
        "read_at": n.read_at,
    }


@dataclass(frozen=True)
class NotificationPage:
    items: list[Notification]
    total: int
    unread: int


def unread_count(session: Session, *, user_id: int) -> int:
    query = select(func.count(Notification.id)).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    return session.scalar(query) or 0


def list_notifications(
    session: Session, *, actor: User, unread_only: bool, offset: int, limit: int
) -> NotificationPage:
    """The caller's own notifications, newest first (nobody reads anyone else's, staff included)."""
    query = select(Notification).where(Notification.user_id == actor.id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Notification.id.desc()).offset(offset).limit(limit))
    return NotificationPage(items=list(rows), total=total, unread=unread_count(session, user_id=actor.id))


def after(
    session: Session, *, user_id: int, after_id: int, unread_only: bool, limit: int
) -> list[Notification]:
    """The user's notifications with id > after_id, oldest first (WebSocket replay and live polling)."""
    query = select(Notification).where(Notification.user_id == user_id, Notification.id > after_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query.order_by(Notification.id.asc()).limit(limit)))


def last_id(session: Session, *, user_id: int) -> int:
    return session.scalar(select(func.max(Notification.id)).where(Notification.user_id == user_id)) or 0


def mark_read(session: Session, *, actor: User, ids: list[int] | None, everything: bool) -> int:
    """Mark the caller's notifications read (the given ids, or all); ids of others are ignored."""
    query = update(Notification).where(Notification.user_id == actor.id, Notification.read_at.is_(None))
    if not everything:
        if not ids:
            return 0
        query = query.where(Notification.id.in_(ids))
    result = session.execute(query.values(read_at=utcnow()).execution_options(synchronize_session=False))
    session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---- settings (the webhook URL) ------------------------------------------------------------------


_WEBHOOK_RULES: dict[str, Any] = {
    "field": "webhook_url", "allow_query": True, "allow_fragment": True,
    "credentials_hint": " (put a token in the path or query)",
}  # fmt: skip


def check_webhook_url(url: str | None) -> str | None:
    """An http(s) URL with a host, or None to turn the webhook off; 422 naming `webhook_url`.

    The form only: where it may point is `check_webhook_destination`'s question (and, for a test
    POST, the delivery's own connect-time check).
    """
    if url is None or not url.strip():
        return None
    return outbound.parse_url(url, **_WEBHOOK_RULES).url


def check_webhook_destination(url: str | None, *, settings: Settings | None) -> str | None:
    """`check_webhook_url`, and the destination allowed by the outbound policy (422 naming
    `webhook_url`, code `destination_not_allowed`). Without settings nothing is allow-listed."""
    if url is None or not url.strip():
        return None
    policy = outbound.policy_for(settings) if settings is not None else outbound.OutboundPolicy()
    return outbound.check_url(policy, url, **_WEBHOOK_RULES)


def set_webhook_url(
    session: Session, *, actor: User, url: str | None, ip: str | None, settings: Settings | None = None
) -> str | None:
    """Store (or clear) the caller's webhook URL. Audited without the URL itself.

    The destination must be one the outbound policy allows; without `settings` nothing is
    allow-listed (only public destinations pass).
    """
    checked = check_webhook_destination(url, settings=settings)
    user = session.get(User, actor.id)
    assert user is not None
    user.webhook_url = checked
    audit.record(
        session, action=AuditAction.notification_settings_changed, actor=actor, target_type="user",
        target_id=actor.id, ip=ip, details={"webhook": "set" if checked else "cleared"},
    )  # fmt: skip
    session.commit()
    return checked


def webhook_url_of(session: Session, *, actor: User) -> str | None:
    user = session.get(User, actor.id)
    return user.webhook_url if user is not None else None
