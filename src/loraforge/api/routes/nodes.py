"""Nodes: the machines that run jobs, their newest telemetry and history. Every signed-in user may read
them (how busy the cluster is, before queueing a job); the jobs listed are only those the caller may
read. Drain and undrain are `api/routes/node_actions.py`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from loraforge.api.deps import CurrentUser, SessionDep
from loraforge.api.ids import Id
from loraforge.api.schemas.operations import NodeDetail, NodeList
from loraforge.services.operations import views

router = APIRouter(prefix="/nodes", tags=["nodes"])


@router.get("", response_model=NodeList, operation_id="nodes_list")
def list_nodes(user: CurrentUser, session: SessionDep) -> NodeList:
    """Every node (the server's host first) with its static facts, newest reading and active jobs."""
    items = views.list_public(session, user)
    return NodeList.model_validate({"items": items, "total": len(items)})


@router.get("/{node_id}", response_model=NodeDetail, operation_id="nodes_get")
def get_node(
    node_id: Id,
    user: CurrentUser,
    session: SessionDep,
    hours: Annotated[float, Query(ge=1, le=168, description="History of the last N hours (1..168).")] = 1,
) -> NodeDetail:
    """One node and its readings of the last `hours`, at most 500 points (averaged when there are more)."""
    return NodeDetail.model_validate(views.detail(session, user, node_id, hours=hours))
