"""Draining a node (operators and admins): no new job is placed on it; with mode `finish` the jobs
running there finish first, with `now` they are stopped at a checkpoint and continue on another node
(`operations.migration`). The node reads `draining` while jobs remain on it, then `drained`
(`node_status`); undraining puts it back in service.

The drain is the operator's wish, kept apart from health and liveness (`nodes.drain_mode`): a drained
node that recovers or reconnects stays drained until undrained.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import Job, JobStatus, Node, User
from loraforge.errors import Conflict
from loraforge.executors.base import Executor
from loraforge.services.jobs.states import StaleJobState
from loraforge.services.operations import migration, node_status, nodes
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

DrainMode = Literal["finish", "now"]


def drain(
    session: Session,
    *,
    settings: Settings,
    executor: Executor,
    actor: User,
    node_id: int,
    mode: DrainMode,
    ip: str | None,
) -> Node:
    """Drain the node (draining it again changes the mode: `finish` → `now` stops what still runs).
    With `now` each job starting or running there is stopped gracefully and re-queued off this node;
    a job already stopping (a person's stop) is left to end as that person asked."""
    ownership.ensure_role(actor, ownership.STAFF)
    node = nodes.get_node(session, node_id)
    previous = node.drain_mode
    node.drain_mode = mode
    if previous is None or node.drained_at is None:
        node.drained_at = utcnow()
    node_status.refresh(session, node, lost_after_s=settings.node_lost_seconds)
    session.commit()  # placement sees the drain before any job on it is stopped
    moved: list[Job] = []
    if mode == "now":
        running = session.scalars(
            select(Job).where(Job.node_id == node.id, Job.status.in_(migration.MOVABLE)).order_by(Job.id)
        ).all()
        for job in running:
            try:
                migration.stop_to_move(session, job, away_from=node.id)
                session.commit()
            except StaleJobState:
                continue  # it finished or was stopped meanwhile: nothing to move
            moved.append(job)
        for job in moved:
            migration.signal_stop(executor, job)
    session.refresh(node)
    audit.record(
        session, action=AuditAction.node_drained, actor=actor, target_type="node", target_id=node.id, ip=ip,
        details={"mode": mode, "previous_mode": previous, "name": node.name, "jobs": [j.id for j in moved]},
    )  # fmt: skip
    node_status.refresh(session, node, lost_after_s=settings.node_lost_seconds)
    session.commit()
    return node


def undrain(session: Session, *, settings: Settings, actor: User, node_id: int, ip: str | None) -> Node:
    """Put a drained (or draining) node back in service. Jobs a drain moved off it that still wait in
    the queue may go back to it: the node leaves their `excluded_nodes` (placement honours exclusions
    on Ray; on a single node they would otherwise wait for ever)."""
    ownership.ensure_role(actor, ownership.STAFF)
    node = nodes.get_node(session, node_id)
    if node.drain_mode is None:
        raise Conflict("the node is not drained", code="node_not_drained")
    previous = node.drain_mode
    node.drain_mode = None
    node.drained_at = None
    waiting = session.scalars(
        select(Job).where(Job.status == JobStatus.queued.value, Job.excluded_nodes.is_not(None))
    ).all()
    released = []
    for job in waiting:
        if node.id in (job.excluded_nodes or []):
            job.excluded_nodes = [n for n in job.excluded_nodes or [] if n != node.id] or None
            released.append(job.id)
    audit.record(
        session, action=AuditAction.node_undrained, actor=actor, target_type="node", target_id=node.id,
        ip=ip, details={"previous_mode": previous, "name": node.name, "released_jobs": released},
    )  # fmt: skip
    node_status.refresh(session, node, lost_after_s=settings.node_lost_seconds)
    session.commit()
    return node
