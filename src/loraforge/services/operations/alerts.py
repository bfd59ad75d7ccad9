"""Alerts: raised once per condition, resolved when the condition clears or by a person.

A condition is named by its `key` (rule + node / GPU / job). While an alert of a key is not resolved,
the same condition raises nothing new; once resolved (by itself or by a person), the next time the
condition holds raises a new alert. `acknowledged` means "someone is on it": it stays active and
still keeps its key from being raised again.

Reading, acknowledging and resolving are for operators and admins (403 `forbidden` for researchers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import Alert, AlertStatus, Node, User
from loraforge.errors import Conflict, NotFound
from loraforge.services.accounts import users
from loraforge.services.operations import alert_delivery
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

StatusFilter = Literal["active", "open", "acknowledged", "resolved", "all"]
ACTIVE = (AlertStatus.open.value, AlertStatus.acknowledged.value)
_FILTERS: dict[str, tuple[str, ...]] = {
    "active": ACTIVE,
    "open": (AlertStatus.open.value,),
    "acknowledged": (AlertStatus.acknowledged.value,),
    "resolved": (AlertStatus.resolved.value,),
    "all": (*ACTIVE, AlertStatus.resolved.value),
}


@dataclass(frozen=True)
class Condition:
    """A rule's finding that should have an active alert."""

    rule: str
    key: str
    severity: str
    title: str
    message: str
    node_id: int | None = None
    job_id: int | None = None
    data: dict[str, Any] | None = None


def active_by_key(session: Session) -> dict[str, Alert]:
    """Every unresolved alert by key, read afresh (a row another writer changed is not served stale)."""
    query = select(Alert).where(Alert.status.in_(ACTIVE)).execution_options(populate_existing=True)
    return {alert.key: alert for alert in session.scalars(query.order_by(Alert.id))}


def raise_alert(session: Session, settings: Settings, condition: Condition, *, now: datetime) -> Alert:
    """Add the alert and its notifications (the caller checked no active alert has the key; commits)."""
    alert = Alert(
        rule=condition.rule, key=condition.key[:200], severity=condition.severity,
        status=AlertStatus.open.value, title=condition.title[:300], message=condition.message,
        node_id=condition.node_id, job_id=condition.job_id, data=condition.data or {}, raised_at=now,
        delivery={},
    )  # fmt: skip
    session.add(alert)
    session.flush()
    alert_delivery.record(session, settings, alert, event=alert_delivery.RAISED)
    return alert


def resolve_automatically(session: Session, settings: Settings, alert: Alert, *, now: datetime) -> None:
    alert.status = AlertStatus.resolved.value
    alert.resolved_at = now
    alert.resolved_by = None
    alert_delivery.record(session, settings, alert, event=alert_delivery.RESOLVED)


# ---- people -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertPage:
    items: list[dict[str, Any]]
    total: int
    open_count: int


def counts(session: Session) -> dict[str, int]:
    """`open` (not yet acknowledged), `active` (open or acknowledged) and `critical` (active ones)."""
    rows = session.execute(
        select(Alert.status, Alert.severity, func.count()).where(Alert.status.in_(ACTIVE))
        .group_by(Alert.status, Alert.severity)
    ).all()  # fmt: skip
    out = {"open": 0, "active": 0, "critical": 0}
    for status, severity, count in rows:
        out["active"] += count
        out["open"] += count if status == AlertStatus.open.value else 0
        out["critical"] += count if severity == "critical" else 0
    return out


def views(session: Session, alerts: list[Alert]) -> list[dict[str, Any]]:
    """The public shape: node names and the usernames of who acknowledged or resolved."""
    user_ids = {i for a in alerts for i in (a.acknowledged_by, a.resolved_by) if i is not None}
    names = users.usernames(session, user_ids)
    node_ids = {a.node_id for a in alerts if a.node_id is not None}
    nodes: dict[int, str] = {}
    if node_ids:
        nodes = {
            i: name for i, name in session.execute(select(Node.id, Node.name).where(Node.id.in_(node_ids)))
        }
    return [
        {
            "id": a.id, "rule": a.rule, "key": a.key, "severity": a.severity, "status": a.status,
            "title": a.title, "message": a.message, "node_id": a.node_id,
            "node_name": nodes.get(a.node_id) if a.node_id is not None else None, "job_id": a.job_id,
            "data": a.data or {}, "raised_at": a.raised_at, "acknowledged_at": a.acknowledged_at,
            "acknowledged_by": names.get(a.acknowledged_by) if a.acknowledged_by else None,
            "resolved_at": a.resolved_at,
            "resolved_by": names.get(a.resolved_by) if a.resolved_by else None,
            "resolved_automatically": a.resolved_at is not None and a.resolved_by is None,
            "delivery": a.delivery or {},
        }
        for a in alerts
    ]  # fmt: skip


def list_alerts(session: Session, *, actor: User, status: StatusFilter, limit: int, offset: int) -> AlertPage:
    """Newest first."""
    ownership.ensure_role(actor, ownership.STAFF)
    query = select(Alert).where(Alert.status.in_(_FILTERS[status]))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(
        session.scalars(query.order_by(Alert.raised_at.desc(), Alert.id.desc()).offset(offset).limit(limit))
    )
    return AlertPage(items=views(session, rows), total=total, open_count=counts(session)["open"])


def _get(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id, populate_existing=True)
    if alert is None:
        raise NotFound("alert not found", code="alert_not_found")
    return alert


def acknowledge(session: Session, *, actor: User, alert_id: int, ip: str | None) -> dict[str, Any]:
    """Someone is on it: the alert stays active, marked with who and when (again: no change)."""
    ownership.ensure_role(actor, ownership.STAFF)
    with alert_delivery.LOCK:
        alert = _get(session, alert_id)
        if alert.status == AlertStatus.resolved.value:
            raise Conflict("the alert is already resolved", code="alert_resolved")
        if alert.status == AlertStatus.open.value:
            alert.status = AlertStatus.acknowledged.value
            alert.acknowledged_at = utcnow()
            alert.acknowledged_by = actor.id
            audit.record(
                session, action=AuditAction.alert_acknowledged, actor=actor, target_type="alert",
                target_id=alert.id, ip=ip, details={"key": alert.key},
            )  # fmt: skip
            session.commit()
    return views(session, [alert])[0]


def resolve(
    session: Session, settings: Settings, *, actor: User, alert_id: int, ip: str | None
) -> dict[str, Any]:
    """A person closes the alert. If the condition still holds, the next check raises it again."""
    ownership.ensure_role(actor, ownership.STAFF)
    with alert_delivery.LOCK:
        alert = _get(session, alert_id)
        if alert.status == AlertStatus.resolved.value:
            raise Conflict("the alert is already resolved", code="alert_resolved")
        alert.status = AlertStatus.resolved.value
        alert.resolved_at = utcnow()
        alert.resolved_by = actor.id
        alert_delivery.record(session, settings, alert, event=alert_delivery.RESOLVED)
        audit.record(
            session, action=AuditAction.alert_resolved, actor=actor, target_type="alert",
            target_id=alert.id, ip=ip, details={"key": alert.key},
        )  # fmt: skip
        session.commit()
    alert_delivery.dispatch(alert_delivery.factory_of(session), settings, [alert.id])
    return views(session, [alert])[0]
