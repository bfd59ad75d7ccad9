"""REST routes: deployments. Thin: parse, authorise, call `services.serving.deployments`.

Deployments also start on their own (the first `/v1/chat/completions` request for a model); these
routes list them, deploy ahead of time, and undeploy.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from starlette.concurrency import run_in_threadpool

from loraforge.api.deps import ClientIP, CurrentUser, DatabaseDep, SettingsDep
from loraforge.api.ids import Id
from loraforge.api.paging import Page, PageSize
from loraforge.api.schemas.deployments import (
    DeploymentCreate,
    DeploymentPage,
    DeploymentPublic,
    DeploymentStatus,
)
from loraforge.services.serving import deployments
from loraforge.services.serving.manager import InferenceManager

router = APIRouter(tags=["deployments"])


def _manager(request: Request) -> InferenceManager:
    manager: InferenceManager = request.app.state.inference
    return manager


@router.get("/deployments", response_model=DeploymentPage, operation_id="deployments_list")
async def list_deployments(
    user: CurrentUser,
    database: DatabaseDep,
    status_: Annotated[
        list[DeploymentStatus] | None, Query(alias="status", description="Repeat for several.")
    ] = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> DeploymentPage:
    """Newest first. Operators and admins see every deployment, researchers the ones they started."""

    def load() -> deployments.DeploymentPage:
        with database.session() as session:
            return deployments.list_deployments(
                session,
                actor=user,
                status=list(status_) if status_ else None,
                offset=(page - 1) * page_size,
                limit=page_size,
            )

    result = await run_in_threadpool(load)
    return DeploymentPage(
        items=[DeploymentPublic.model_validate(item) for item in result.items],
        total=result.total,
        page=page,
        page_size=page_size,
    )


@router.post(
    "/deployments",
    response_model=DeploymentPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="deployments_create",
)
async def create_deployment(
    body: DeploymentCreate, user: CurrentUser, database: DatabaseDep, settings: SettingsDep, request: Request
) -> DeploymentPublic:
    """Deploy a model now (load it in a backend) instead of on its first request. A model that is
    already served answers with its current deployment."""
    result = await deployments.deploy(
        database=database, settings=settings, manager=_manager(request), actor=user, model=body.model
    )
    return DeploymentPublic.model_validate(result)


@router.get("/deployments/{deployment_id}", response_model=DeploymentPublic, operation_id="deployments_get")
async def get_deployment(deployment_id: Id, user: CurrentUser, database: DatabaseDep) -> DeploymentPublic:
    def load() -> deployments.DeploymentView:
        with database.session() as session:
            row = deployments.get_deployment(session, actor=user, deployment_id=deployment_id)
            return deployments.view(session, row)

    return DeploymentPublic.model_validate(await run_in_threadpool(load))


@router.post(
    "/deployments/{deployment_id}/stop", response_model=DeploymentPublic, operation_id="deployments_stop"
)
async def stop_deployment(
    deployment_id: Id, user: CurrentUser, database: DatabaseDep, request: Request, ip: ClientIP
) -> DeploymentPublic:
    """Undeploy: the model is unloaded (the worker exits when nothing is left); status stopped."""
    result = await deployments.stop(
        database=database, manager=_manager(request), actor=user, deployment_id=deployment_id, ip=ip
    )
    return DeploymentPublic.model_validate(result)
