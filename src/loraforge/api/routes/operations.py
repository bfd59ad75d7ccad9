"""The operators' summary: nodes, queue, alerts, storage, this month's usage and recent failures."""

from __future__ import annotations

from fastapi import APIRouter

from loraforge.api.deps import CurrentUser, SessionDep, SettingsDep
from loraforge.api.schemas.operations import OperationsSummary
from loraforge.services.operations import summary

router = APIRouter(prefix="/operations", tags=["operations"])


@router.get("/summary", response_model=OperationsSummary, operation_id="operations_summary")
def get_summary(user: CurrentUser, session: SessionDep, settings: SettingsDep) -> OperationsSummary:
    """Operators and admins (403 `forbidden` for researchers). Live: `/ws/operations`."""
    return OperationsSummary.model_validate(summary.summary(session, settings, actor=user))
