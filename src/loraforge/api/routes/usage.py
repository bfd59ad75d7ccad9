"""Usage and quotas: my usage (any signed-in user, only ever their own), the admins' report (JSON or
CSV), one user's quota overrides and the prices (admins). Thin: `services.usage` does the work."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from loraforge.api.deps import AdminUser, ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.ids import Id
from loraforge.api.schemas.usage import (
    MyUsage,
    PricesBody,
    PricesView,
    QuotaUpdate,
    UsageReport,
    UserQuotaView,
)
from loraforge.services.usage import prices, quotas, reports
from loraforge.settings import Settings

router = APIRouter(tags=["usage"])

MonthQuery = Annotated[
    str | None,
    Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM (UTC); default: this month."),
]
REPORT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {"text/csv": {}},
        "description": "JSON, or with format=csv a CSV attachment (one line per user, then the total).",
    }
}


@router.get("/usage/me", response_model=MyUsage, operation_id="usage_me")
def my_usage(
    user: CurrentUser, session: SessionDep, settings: SettingsDep, month: MonthQuery = None
) -> MyUsage:
    """Your own usage in a month: totals, each attempt, the last 12 months, storage and quota."""
    found = reports.mine(session, settings, user=user, month=reports.parse_month(month))
    return MyUsage.model_validate(found)


@router.get(
    "/admin/usage", response_model=UsageReport, responses=REPORT_RESPONSES, operation_id="admin_usage_report"
)
def usage_report(
    _admin: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    month: MonthQuery = None,
    format: Annotated[Literal["json", "csv"], Query(description="json, or csv (an attachment).")] = "json",
) -> UsageReport | Response:
    """Every user's usage in a month (admins), with storage and cost."""
    chosen = reports.parse_month(month)
    report = reports.all_users(session, settings, month=chosen)
    if format == "csv":
        return Response(
            content=reports.as_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="usage-{chosen}.csv"'},
        )
    return UsageReport.model_validate(report)


@router.get("/admin/usage/prices", response_model=PricesView, operation_id="admin_usage_prices")
def get_prices(_admin: AdminUser, session: SessionDep, settings: SettingsDep) -> PricesView:
    """The prices in force and the server's defaults (admins)."""
    return _prices_view(prices.current(session, settings), settings)


@router.put("/admin/usage/prices", response_model=PricesView, operation_id="admin_usage_set_prices")
def set_prices(
    body: PricesBody, admin: AdminUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> PricesView:
    """Set the prices per GPU-hour and CPU-hour and their currency (null: the default); audited.
    They apply to usage written from now on (finished attempts keep their cost)."""
    updated = prices.update(
        session, settings, actor=admin, gpu_hour=body.gpu_hour, cpu_hour=body.cpu_hour,
        currency=body.currency, ip=ip,
    )  # fmt: skip
    return _prices_view(updated, settings)


def _prices_view(current: prices.Prices, settings: Settings) -> PricesView:
    return PricesView.model_validate({**current.as_dict(), "defaults": prices.defaults(settings).as_dict()})


@router.get("/admin/users/{user_id}/quota", response_model=UserQuotaView, operation_id="admin_get_quota")
def get_quota(user_id: Id, _admin: AdminUser, session: SessionDep, settings: SettingsDep) -> UserQuotaView:
    """A user's quota overrides, what is in force and the defaults (admins)."""
    return UserQuotaView.model_validate(quotas.view(session, settings, user_id))


@router.put("/admin/users/{user_id}/quota", response_model=UserQuotaView, operation_id="admin_set_quota")
def set_quota(
    user_id: Id, body: QuotaUpdate, admin: AdminUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> UserQuotaView:
    """Replace a user's quota overrides (null: the default); audited."""
    updated = quotas.update(session, settings, actor=admin, user_id=user_id, values=body.model_dump(), ip=ip)
    return UserQuotaView.model_validate(updated)
