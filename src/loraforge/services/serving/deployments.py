"""Deployments: which model versions an inference backend serves (list, read, deploy, stop).

The processes themselves belong to `loraforge.services.serving.manager.InferenceManager`; this module is the
access policy and the shapes. Read and stop: the user who started the deployment, or staff (operators,
admins); strangers get 404. Deploy: anyone who may use the model
(`services.models.resolution.resolve_for_inference`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from loraforge.db.models import Deployment, ModelVersion, RegisteredModel, Role, User, utcnow
from loraforge.db.session import Database
from loraforge.errors import NotFound, Unavailable
from loraforge.services.models import resolution
from loraforge.services.platform import audit
from loraforge.services.platform.ownership import ensure_access, owner_scope
from loraforge.services.serving.deployment_rows import ACTIVE_STATUSES
from loraforge.services.serving.manager import InferenceManager
from loraforge.settings import Settings

STAFF = frozenset({Role.admin, Role.operator})
DEMO_NAME = "demo-tiny"


@dataclass(frozen=True)
class DeploymentView:
    id: int
    model: str
    model_id: int | None
    version_id: int | None
    version_number: int | None
    owner_id: int | None
    backend: str
    status: str
    memory_bytes: int | None
    requests_served: int
    last_used_at: datetime | None
    error: str | None
    created_at: datetime | None
    stopped_at: datetime | None


def _names(session: Session, version_ids: set[int]) -> dict[int, tuple[str, int, int]]:
    """version id -> (model name, model id, version number)."""
    if not version_ids:
        return {}
    rows = session.execute(
        select(ModelVersion.id, RegisteredModel.name, RegisteredModel.id, ModelVersion.number)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(ModelVersion.id.in_(version_ids))
    ).all()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def _view(row: Deployment, names: dict[int, tuple[str, int, int]]) -> DeploymentView:
    version_id: int | None = row.model_version_id
    # No version: the virtual demo-tiny; a registry row shows the model's current name.
    fallback = (row.model_name or DEMO_NAME, None, None)
    name, model_id, number = names.get(version_id, fallback) if version_id else fallback
    return DeploymentView(
        id=row.id,
        model=name,
        model_id=model_id,
        version_id=version_id,
        version_number=number,
        owner_id=row.owner_id,
        backend=row.backend,
        status=row.status,
        memory_bytes=row.memory_bytes,
        requests_served=row.requests_served,
        last_used_at=row.last_used_at,
        error=row.error,
        created_at=row.created_at,
        stopped_at=row.stopped_at,
    )


def view(session: Session, row: Deployment) -> DeploymentView:
    return _view(row, _names(session, {row.model_version_id} if row.model_version_id else set()))


@dataclass(frozen=True)
class DeploymentPage:
    items: list[DeploymentView]
    total: int


def list_deployments(
    session: Session, *, actor: User, status: list[str] | None = None, offset: int = 0, limit: int = 50
) -> DeploymentPage:
    """Newest first; staff see everyone's, researchers their own."""
    query = select(Deployment)
    owner = owner_scope(actor, staff_may=STAFF)
    if owner is not None:
        query = query.where(Deployment.owner_id == owner)
    if status:
        query = query.where(Deployment.status.in_(status))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Deployment.id.desc()).offset(offset).limit(limit)).all()
    names = _names(session, {r.model_version_id for r in rows if r.model_version_id})
    return DeploymentPage(items=[_view(r, names) for r in rows], total=total)


def get_deployment(session: Session, *, actor: User, deployment_id: int) -> Deployment:
    row = session.get(Deployment, deployment_id)
    if row is None:
        raise NotFound("deployment not found", code="deployment_not_found")
    ensure_access(actor, row.owner_id, staff_may=STAFF, resource="deployment")
    return row


def _resolve(database: Database, settings: Settings, actor: User, model: str) -> Any:
    with database.session() as session:
        return resolution.resolve_for_inference(session, settings=settings, actor=actor, name=model)


async def deploy(
    *, database: Database, settings: Settings, manager: InferenceManager, actor: User, model: str
) -> DeploymentView:
    """Serve `model` (a /v1 model name) now instead of on its first request; the deployment's view.

    Resolution goes through the registry (NotFound `model_not_found` for names the actor may not use);
    an already-warm model returns its current deployment. The start is audited by the manager.
    """
    served = await run_in_threadpool(_resolve, database, settings, actor, model)
    endpoint = await manager.endpoint_for(served, actor_id=actor.id)

    def load() -> DeploymentView:
        with database.session() as session:
            row = session.get(Deployment, endpoint.deployment_id) if endpoint.deployment_id else None
            if row is None:  # every served model has a row (demo-tiny too); gone = stopped meanwhile
                raise Unavailable("the deployment stopped while starting; retry", code="model_unavailable")
            return view(session, row)

    return await run_in_threadpool(load)


async def stop(
    *, database: Database, manager: InferenceManager, actor: User, deployment_id: int, ip: str | None
) -> DeploymentView:
    """Undeploy: unload it in its backend (the worker exits when nothing is left), status stopped."""

    def check() -> None:
        with database.session() as session:
            get_deployment(session, actor=actor, deployment_id=deployment_id)

    await run_in_threadpool(check)
    item = manager.deployment_for_row(deployment_id)
    if item is not None:
        await manager.undeploy(item)

    def finish() -> DeploymentView:
        with database.session() as session:
            row = get_deployment(session, actor=actor, deployment_id=deployment_id)
            changed = row.status in ACTIVE_STATUSES or item is not None
            if row.status in ACTIVE_STATUSES:
                # Not served by this server's manager (e.g. a row another process left): just close it.
                row.status = "stopped"
                row.stopped_at = utcnow()
            if changed:
                audit.record(
                    session,
                    action=audit.AuditAction.deployment_stopped,
                    actor=actor,
                    target_type="deployment",
                    target_id=deployment_id,
                    ip=ip,
                )
            session.commit()
            session.refresh(row)
            return view(session, row)

    return await run_in_threadpool(finish)
