"""Node actions: drain and undrain a node (operators and admins; 403 `forbidden` for researchers) and
migrate a running job to another node (its owner, or staff; 404 for anyone else). Thin: the work is
`services.operations.drain` and `services.operations.migration`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from loraforge.api.deps import ClientIP, CurrentUser, SchedulerDep, SessionDep, SettingsDep
from loraforge.api.ids import Id
from loraforge.api.schemas.jobs import JobPublic
from loraforge.api.schemas.node_actions import NodeDrain
from loraforge.api.schemas.operations import NodePublic
from loraforge.services.operations import drain, migration, views

router = APIRouter(tags=["nodes"])


@router.post("/nodes/{node_id}/drain", response_model=NodePublic, operation_id="nodes_drain")
def drain_node(
    node_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
    ip: ClientIP, body: Annotated[NodeDrain | None, Body()] = None,
) -> NodePublic:  # fmt: skip
    """No new jobs on the node. `now` also stops its running jobs at a checkpoint; each is re-queued
    off this node and resumes where placement puts it. Draining again changes the mode."""
    node = drain.drain(
        session, settings=settings, executor=scheduler.executor, actor=user, node_id=node_id,
        mode=(body or NodeDrain()).mode, ip=ip,
    )  # fmt: skip
    scheduler.wake()
    return NodePublic.model_validate(views.one_public(session, user, node))


@router.post("/nodes/{node_id}/undrain", response_model=NodePublic, operation_id="nodes_undrain")
def undrain_node(
    node_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
    ip: ClientIP,
) -> NodePublic:  # fmt: skip
    """Back in service (409 `node_not_drained` when it is not drained); queued jobs may start on it."""
    node = drain.undrain(session, settings=settings, actor=user, node_id=node_id, ip=ip)
    scheduler.wake()
    return NodePublic.model_validate(views.one_public(session, user, node))


@router.post("/jobs/{job_id}/migrate", response_model=JobPublic, operation_id="jobs_migrate")
def migrate_job(
    job_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
    ip: ClientIP,
) -> JobPublic:  # fmt: skip
    """Move a running job to another node: stopped at a checkpoint, re-queued with this node excluded,
    resumed from that checkpoint elsewhere. 409 `no_other_node` when no other node could take it."""
    job = migration.migrate_job(
        session, settings=settings, executor=scheduler.executor, actor=user, job_id=job_id, ip=ip
    )
    scheduler.announce(job)
    return JobPublic.read(session, job)
