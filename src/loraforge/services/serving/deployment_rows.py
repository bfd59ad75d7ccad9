"""The `deployments` rows the inference manager keeps: started (audited), ready, finished, request
counts and memory written back, and rows an earlier server left active swept to `stopped`.

Each function opens its own session: the manager calls them from a thread (`run_in_threadpool`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from loraforge.db.models import Deployment, User, utcnow
from loraforge.db.session import Database
from loraforge.inference.types import ServedModel
from loraforge.services.platform import audit
from loraforge.services.serving.backend_processes import BackendProcess, is_backend_process

ACTIVE_STATUSES = ("starting", "ready")


def start_row(
    database: Database, served: ServedModel, actor_id: int | None, backend: BackendProcess
) -> int | None:
    with database.session() as session:
        row = Deployment(
            model_version_id=served.version_id,  # None for demo-tiny (no registry row)
            model_name=served.name,
            owner_id=actor_id,
            backend=backend.kind,
            status="starting",
            base_url=f"{backend.root_url}/v1",
            pid=backend.process.pid,
        )
        session.add(row)
        session.flush()
        actor = session.get(User, actor_id) if actor_id is not None else None
        audit.record(
            session,
            action=audit.AuditAction.deployment_started,
            actor=actor,
            target_type="deployment",
            target_id=row.id,
            details={"model": served.name, "backend": backend.kind},
        )
        session.commit()
        return row.id


def ready_row(database: Database, deployment_id: int, memory_bytes: int | None) -> None:
    with database.session() as session:
        row = session.get(Deployment, deployment_id)
        if row is not None:
            row.status = "ready"
            row.memory_bytes = memory_bytes
            row.last_used_at = utcnow()
            session.commit()


def finish_row(
    database: Database,
    deployment_id: int,
    status: str,
    *,
    error: str | None = None,
    audit_reason: str | None = None,
) -> None:
    """Close an active row; `audit_reason` records a `deployment.stopped` by the system."""
    with database.session() as session:
        row = session.get(Deployment, deployment_id)
        if row is not None and row.status in ACTIVE_STATUSES:
            row.status = status
            row.error = error
            row.stopped_at = utcnow()
            if audit_reason is not None:
                audit.record(
                    session,
                    action=audit.AuditAction.deployment_stopped,
                    actor=None,
                    target_type="deployment",
                    target_id=deployment_id,
                    details={"reason": audit_reason},
                )
            session.commit()


def sweep_stale_rows(database: Database, our_pids: Collection[int]) -> int:
    """Rows left starting/ready by an earlier server whose backend process is gone → stopped."""
    changed = 0
    with database.session() as session:
        rows = session.scalars(select(Deployment).where(Deployment.status.in_(ACTIVE_STATUSES))).all()
        for row in rows:
            if row.pid in our_pids or is_backend_process(row.pid):
                continue
            row.status = "stopped"
            row.error = row.error or "the inference backend is gone (server restart)"
            row.stopped_at = utcnow()
            changed += 1
        session.commit()
    return changed


def write_counts(database: Database, counts: Mapping[int, int], last_used: Mapping[int, datetime]) -> None:
    """Add requests served since the last write, and when each deployment was last used."""
    with database.session() as session:
        for deployment_id, count in counts.items():
            row = session.get(Deployment, deployment_id)
            if row is not None:
                row.requests_served += count
                row.last_used_at = last_used.get(deployment_id, row.last_used_at)
        session.commit()


def write_memory(database: Database, updates: Mapping[int, Any]) -> None:
    """The builtin worker's memory per deployment, where known and changed."""
    with database.session() as session:
        for deployment_id, memory in updates.items():
            row = session.get(Deployment, deployment_id)
            if row is not None and memory is not None and row.memory_bytes != memory:
                row.memory_bytes = memory
        session.commit()
