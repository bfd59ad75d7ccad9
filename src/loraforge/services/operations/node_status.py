"""A node's status, decided in one place from three independent inputs: whether it reports (lost),
the operator's drain (draining → drained once nothing runs there) and its health checks (unhealthy).
Lost wins over drain, drain over health: a drained node that recovers stays drained until undrained,
and a drained node that stops reporting shows as lost (nothing can be placed on it either way)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ACTIVE, Job, Node, NodeStatus


def decide(*, reporting: bool, drain_mode: str | None, active_jobs: int, failing_checks: int) -> NodeStatus:
    if not reporting:
        return NodeStatus.lost
    if drain_mode is not None:
        return NodeStatus.draining if active_jobs else NodeStatus.drained
    if failing_checks:
        return NodeStatus.unhealthy
    return NodeStatus.ready


def active_jobs_on(session: Session, node_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.node_id == node_id, Job.status.in_([s.value for s in ACTIVE]))
        )
        or 0
    )


def refresh(session: Session, node: Node, *, lost_after_s: float, now: datetime | None = None) -> NodeStatus:
    """Recompute and store `node.status` (the caller commits). `kind == "ray"` nodes that Ray reports
    dead are marked by clearing `last_seen_at` (see `operations.ray_nodes`)."""
    now = now or utcnow()
    seen = node.last_seen_at
    reporting = seen is not None and now - seen <= timedelta(seconds=lost_after_s)
    status = decide(
        reporting=reporting,
        drain_mode=node.drain_mode,
        active_jobs=active_jobs_on(session, node.id),
        failing_checks=len(node.health or []),
    )
    if node.status != status.value:
        node.status = status.value
    return status
