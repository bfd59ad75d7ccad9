"""The operators' summary (`GET /api/operations/summary`, the first frame of `/ws/operations`): nodes at
a glance, the queue, open alerts, storage, this month's usage and the latest failures.

Cheap enough to build every few seconds per connected operator: a handful of aggregate queries, the
newest reading per node (one query) and the ten newest failures.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ACTIVE, Alert, AlertStatus, Job, JobStatus, Node, User
from loraforge.services.operations import nodes
from loraforge.services.platform import ownership
from loraforge.services.usage import reports, storage
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.operations")

RECENT_FAILURES = 10


def month_of(now: datetime) -> str:
    return f"{now.year:04d}-{now.month:02d}"


def _usage_month(session: Session, settings: Settings, month: str) -> dict[str, Any]:
    empty = {"month": month, "jobs": 0, "gpu_hours": 0.0, "cpu_hours": 0.0, "cost": None}
    empty["currency"] = settings.price_currency
    try:
        totals = dict(reports.month_totals(session, settings, month))
    except (OSError, ValueError):
        logger.exception("usage totals for the summary failed")
        return empty
    return {**empty, **{k: totals[k] for k in empty if k in totals}}


def _storage(settings: Settings) -> dict[str, int]:
    used = 0
    try:
        used = int(storage.total_used_bytes(settings))
    except OSError:
        logger.exception("storage total for the summary failed")
    where = settings.data_dir
    while not where.exists() and where.parent != where:
        where = where.parent
    try:
        free = int(shutil.disk_usage(where).free)
    except OSError:
        free = 0
    return {"used_bytes": used, "free_bytes": free}


def _queue(session: Session, now: datetime) -> dict[str, Any]:
    queued = session.execute(
        select(func.count(Job.id), func.min(Job.queued_at)).where(Job.status == JobStatus.queued.value)
    ).one()
    count = int(queued[0] or 0)
    running = int(
        session.scalar(select(func.count(Job.id)).where(Job.status.in_([s.value for s in ACTIVE]))) or 0
    )
    waits = [
        max(0.0, (now - ts).total_seconds())
        for ts in session.scalars(
            select(Job.queued_at).where(Job.status == JobStatus.queued.value, Job.queued_at.is_not(None))
        )
        if ts is not None
    ]
    return {
        "queued": count,
        "running": running,
        "avg_wait_seconds": round(sum(waits) / len(waits), 1) if waits else 0.0,
        "oldest_wait_seconds": round(max(waits), 1) if waits else 0.0,
    }


def _alerts(session: Session) -> dict[str, int]:
    """Open = raised and not yet acknowledged or resolved (what still needs someone's attention)."""
    rows = session.execute(
        select(Alert.severity, func.count(Alert.id))
        .where(Alert.status == AlertStatus.open.value)
        .group_by(Alert.severity)
    ).all()
    counts = {str(severity): int(n) for severity, n in rows}
    return {"open": sum(counts.values()), "critical": counts.get("critical", 0)}


def _failures(session: Session) -> list[dict[str, Any]]:
    jobs = session.scalars(
        select(Job)
        .where(Job.status == JobStatus.failed.value)
        .order_by(Job.finished_at.desc().nulls_last(), Job.id.desc())
        .limit(RECENT_FAILURES)
    ).all()
    node_ids = {j.node_id for j in jobs if j.node_id is not None}
    names = (
        {int(i): str(n) for i, n in session.execute(select(Node.id, Node.name).where(Node.id.in_(node_ids)))}
        if node_ids
        else {}
    )
    out: list[dict[str, Any]] = []
    for job in jobs:
        error = job.error if isinstance(job.error, dict) else {}
        out.append(
            {
                "job_id": job.id,
                "name": job.name,
                "finished_at": job.finished_at,
                "code": str(error["code"]) if error.get("code") is not None else None,
                "message": str(error["message"]) if error.get("message") is not None else None,
                "node_name": names.get(job.node_id) if job.node_id is not None else None,
            }
        )
    return out


def _nodes(session: Session) -> list[dict[str, Any]]:
    rows = nodes.list_nodes(session)
    latest = nodes.latest_samples(session, [n.id for n in rows])
    out: list[dict[str, Any]] = []
    for node in rows:
        sample = latest.get(node.id)
        data = sample.data if sample is not None else {}
        gpus = [
            {
                "index": g["index"],
                "utilization": g.get("utilization"),
                "temperature_c": g.get("temperature_c"),
            }
            for g in data.get("gpus") or []
            if isinstance(g, dict) and isinstance(g.get("index"), int)
        ]
        out.append(
            {
                "id": node.id,
                "name": node.name,
                "status": node.status,
                "cpu_percent": data.get("cpu_percent"),
                "gpus": gpus,
            }
        )
    return out


def build(session: Session, settings: Settings, *, now: datetime | None = None) -> dict[str, Any]:
    """The summary, for callers that checked the role already (the WebSocket checks on connect)."""
    now = now or utcnow()
    return {
        "nodes": _nodes(session),
        "queue": _queue(session, now),
        "alerts": _alerts(session),
        "storage": _storage(settings),
        "usage_month": _usage_month(session, settings, month_of(now)),
        "recent_failures": _failures(session),
    }


def summary(session: Session, settings: Settings, *, actor: User) -> dict[str, Any]:
    """`GET /api/operations/summary`: operators and admins only."""
    ownership.ensure_role(actor, ownership.STAFF)
    return build(session, settings)
