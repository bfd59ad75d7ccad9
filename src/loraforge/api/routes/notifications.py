"""Notifications: the caller's list, mark read, webhook settings and a test POST.
Thin: parse, authorise (own notifications only), call `services.platform.notifications` /
`services.platform.webhooks`.
The live channel is `WS /ws/notifications` (`api/routes/ws_notifications.py`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from loraforge.api.deps import ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.paging import Page, PageSize
from loraforge.api.schemas.notifications import (
    MarkedRead,
    MarkRead,
    NotificationPage,
    NotificationPublic,
    NotificationSettings,
    NotificationSettingsUpdate,
    WebhookTest,
    WebhookTestResult,
)
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.platform import notifications, webhooks

router = APIRouter(tags=["notifications"])


@router.get("/notifications", response_model=NotificationPage, operation_id="notifications_list")
def list_notifications(
    user: CurrentUser,
    session: SessionDep,
    unread_only: Annotated[bool, Query(description="Only unread ones.")] = False,
    page: Page = 1,
    page_size: PageSize = 20,
) -> NotificationPage:
    """Your notifications, newest first, with the unread count."""
    found = notifications.list_notifications(
        session, actor=user, unread_only=unread_only, offset=(page - 1) * page_size, limit=page_size
    )
    return NotificationPage(
        items=[NotificationPublic.model_validate(notifications.notification_json(n)) for n in found.items],
        total=found.total,
        unread=found.unread,
        page=page,
        page_size=page_size,
    )


@router.post("/notifications/read", response_model=MarkedRead, operation_id="notifications_mark_read")
def mark_read(body: MarkRead, user: CurrentUser, session: SessionDep) -> MarkedRead:
    """Mark `ids` (yours; others are ignored) or `all` read."""
    marked = notifications.mark_read(session, actor=user, ids=body.ids, everything=body.all)
    return MarkedRead(marked=marked, unread=notifications.unread_count(session, user_id=user.id))


@router.get(
    "/notifications/settings", response_model=NotificationSettings, operation_id="notifications_get_settings"
)
def get_settings(user: CurrentUser, session: SessionDep) -> NotificationSettings:
    return NotificationSettings(webhook_url=notifications.webhook_url_of(session, actor=user))


@router.put(
    "/notifications/settings", response_model=NotificationSettings, operation_id="notifications_put_settings"
)
def put_settings(
    body: NotificationSettingsUpdate,
    user: CurrentUser,
    session: SessionDep,
    ip: ClientIP,
    settings: SettingsDep,
) -> NotificationSettings:
    """Set (http/https only) or clear your webhook URL."""
    url = notifications.set_webhook_url(session, actor=user, url=body.webhook_url, ip=ip, settings=settings)
    return NotificationSettings(webhook_url=url)


@router.post(
    "/notifications/test-webhook", response_model=WebhookTestResult, operation_id="notifications_test_webhook"
)
def test_webhook(
    body: WebhookTest, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> WebhookTestResult:
    """POST a sample notification once to `webhook_url` (or your saved URL) and say how it went."""
    url = notifications.check_webhook_url(body.webhook_url) if body.webhook_url else None
    url = url or notifications.webhook_url_of(session, actor=user)
    if not url:
        raise InvalidInput(
            "no webhook URL to test", fields=[FieldIssue(field="webhook_url", message="set one first")]
        )
    result = webhooks.send_test(settings, url=url, user=user)
    return WebhookTestResult(delivered=result.ok, status_code=result.status_code, error=result.error)
