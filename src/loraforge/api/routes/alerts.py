"""Alerts raised by the health rules, and the rules' thresholds: operators and admins only (403
`forbidden` for researchers). Thin: `services.operations.alerts` / `alert_rules` do the work."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from loraforge.api.deps import ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.ids import Id
from loraforge.api.schemas.alerts import AlertPage, AlertPublic, AlertRulesUpdate, AlertRulesView
from loraforge.services.operations import alert_rules, alerts

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("", response_model=AlertPage, operation_id="alerts_list")
def list_alerts(
    user: CurrentUser,
    session: SessionDep,
    status: Annotated[
        alerts.StatusFilter, Query(description="active = open or acknowledged (the default).")
    ] = "active",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AlertPage:
    """Newest first, with `open_count` for the header's bell."""
    page = alerts.list_alerts(session, actor=user, status=status, limit=limit, offset=offset)
    return AlertPage(
        items=[AlertPublic.model_validate(item) for item in page.items],
        total=page.total,
        open_count=page.open_count,
    )


@router.get("/rules", response_model=AlertRulesView, operation_id="alerts_get_rules")
def get_rules(user: CurrentUser, session: SessionDep, settings: SettingsDep) -> AlertRulesView:
    view = alert_rules.view(session, settings, actor=user)
    return AlertRulesView.model_validate(view, from_attributes=True)


@router.put("/rules", response_model=AlertRulesView, operation_id="alerts_update_rules")
def update_rules(
    body: AlertRulesUpdate, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> AlertRulesView:
    """Change thresholds (audited). Names left out stay as they are; `null` restores the default."""
    view = alert_rules.update(session, settings, actor=user, changes=body.changes(), ip=ip)
    return AlertRulesView.model_validate(view, from_attributes=True)


@router.post("/{alert_id}/acknowledge", response_model=AlertPublic, operation_id="alerts_acknowledge")
def acknowledge(alert_id: Id, user: CurrentUser, session: SessionDep, ip: ClientIP) -> AlertPublic:
    """Someone is on it: the alert stays active (409 `alert_resolved` once resolved)."""
    return AlertPublic.model_validate(alerts.acknowledge(session, actor=user, alert_id=alert_id, ip=ip))


@router.post("/{alert_id}/resolve", response_model=AlertPublic, operation_id="alerts_resolve")
def resolve(
    alert_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> AlertPublic:
    """Close the alert (audited, announced). A condition that still holds is raised again."""
    view = alerts.resolve(session, settings, actor=user, alert_id=alert_id, ip=ip)
    return AlertPublic.model_validate(view)
