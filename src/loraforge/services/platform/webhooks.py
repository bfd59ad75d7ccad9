"""Webhook delivery: POST each pending notification to its owner's webhook URL, with retries.

A notification created while its owner has a webhook URL starts as `webhook_status="pending"` with
`webhook_next_at=now`. `deliver_due` (called by the background task about every second) claims due
rows with a conditional UPDATE (so two server processes never POST the same one), POSTs JSON
`{id, kind, title, body, job_id, created_at, data}` with `httpx` (timeout `webhook_timeout_seconds`,
no redirects), and records the outcome: a 2xx → `delivered`; otherwise attempt + 1 and a retry after
`webhook_backoff_seconds × 2^(attempt-1)` (at most an hour) until `webhook_max_attempts`, then
`failed`. The URL is read at delivery time (a changed URL applies to pending ones; a removed URL fails
them) and is never logged: log lines name the notification and user ids only.

Every connection obeys the outbound policy (`services.platform.outbound`), checked again at connect
time: a URL saved before the policy, or whose name now resolves to an internal address, is refused
("destination not allowed"). Any other failure reads "delivery failed", whatever happened (refused,
reset, protocol error, timeout), so a webhook cannot tell the ports of a host apart; the reason goes
to the server log only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from loraforge import __version__
from loraforge.db.base import utcnow
from loraforge.db.models import Notification, User
from loraforge.db.session import Database
from loraforge.errors import InvalidInput
from loraforge.services.platform import outbound, outbound_transport
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.webhooks")

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_FAILED = "delivery failed"
NOT_ALLOWED = "destination not allowed"
MAX_BACKOFF_SECONDS = 3600.0
_BATCH = 50
USER_AGENT = f"LoRAForge-Webhook/{__version__}"


def payload(n: Notification) -> dict[str, Any]:
    created = n.created_at.isoformat() if isinstance(n.created_at, datetime) else str(n.created_at)
    return {
        "id": n.id,
        "kind": n.kind,
        "title": n.title,
        "body": n.body,
        "job_id": n.job_id,
        "created_at": created,
        "data": n.data or {},
    }


def backoff_seconds(settings: Settings, attempts: int) -> float:
    """Wait after the `attempts`-th failed attempt: base, 2 × base, 4 × base, … (capped)."""
    return float(min(settings.webhook_backoff_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


@dataclass(frozen=True)
class PostResult:
    ok: bool
    status_code: int | None
    error: str | None  # a short reason, never the response body (it could echo anything)


def post(client: httpx.Client, url: str, body: dict[str, Any]) -> PostResult:
    try:
        # The URL's syntax again: one saved before today's rules must not be used as it is.
        outbound.parse_url(url, field="webhook_url", allow_query=True, allow_fragment=True)
    except InvalidInput:
        return PostResult(False, None, NOT_ALLOWED)
    try:
        with client.stream("POST", url, json=body, headers={"User-Agent": USER_AGENT}) as response:
            status = response.status_code  # the body is never read: it could echo anything
    except outbound.OutboundRefused:
        return PostResult(False, None, NOT_ALLOWED)
    except httpx.HTTPError as exc:
        logger.info("webhook POST failed: %s", type(exc).__name__)
        return PostResult(False, None, DELIVERY_FAILED)
    if 200 <= status < 300:
        return PostResult(True, status, None)
    return PostResult(False, status, f"HTTP {status}")


def _client(settings: Settings) -> httpx.Client:
    return outbound_transport.client(settings, timeout=settings.webhook_timeout_seconds)


def _claim(
    database: Database, settings: Settings, now: datetime
) -> list[tuple[int, str | None, dict[str, Any]]]:
    """Due pending rows this process now owns: (notification id, current URL, payload)."""
    lease = now + timedelta(seconds=settings.webhook_timeout_seconds * 2 + 5)
    claimed: list[tuple[int, str | None, dict[str, Any]]] = []
    with database.session() as session:
        rows = session.execute(
            select(Notification, User.webhook_url)
            .join(User, User.id == Notification.user_id)
            .where(Notification.webhook_status == PENDING, Notification.webhook_next_at <= now)
            .order_by(Notification.webhook_next_at, Notification.id)
            .limit(_BATCH)
        ).all()
        for n, url in rows:
            # Push webhook_next_at past the POST: another process skips the row while we deliver it.
            result = session.execute(
                update(Notification)
                .where(Notification.id == n.id, Notification.webhook_status == PENDING)
                .where(Notification.webhook_next_at == n.webhook_next_at)
                .values(webhook_next_at=lease)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append((n.id, url, payload(n)))
        session.commit()
    return claimed


def _record(database: Database, settings: Settings, notification_id: int, result: PostResult | None) -> str:
    with database.session() as session:
        n = session.get(Notification, notification_id)
        if n is None:
            return FAILED
        n.webhook_attempts = (n.webhook_attempts or 0) + 1
        if result is not None and result.ok:
            n.webhook_status, n.webhook_next_at = DELIVERED, None
        elif result is None or n.webhook_attempts >= settings.webhook_max_attempts:
            n.webhook_status, n.webhook_next_at = FAILED, None
        else:
            n.webhook_next_at = utcnow() + timedelta(seconds=backoff_seconds(settings, n.webhook_attempts))
        status, attempts, user_id = n.webhook_status, n.webhook_attempts, n.user_id
        session.commit()
    reason = "no webhook URL any more" if result is None else (result.error or "ok")
    log = logger.info if status == DELIVERED else logger.warning
    log(
        "webhook for notification %s (user %s): attempt %s, %s: %s",
        notification_id,
        user_id,
        attempts,
        status,
        reason,
    )
    return str(status)


def deliver_due(database: Database, settings: Settings, *, now: datetime | None = None) -> dict[str, int]:
    """Deliver every due pending notification once; returns counts by resulting status."""
    claimed = _claim(database, settings, now or utcnow())
    counts = {PENDING: 0, DELIVERED: 0, FAILED: 0}
    if not claimed:
        return counts
    with _client(settings) as client:
        for notification_id, url, body in claimed:
            result = post(client, url, body) if url else None
            counts[_record(database, settings, notification_id, result)] += 1
    return counts


def send_test(settings: Settings, *, url: str, user: User) -> PostResult:
    """POST a sample notification to `url` once (no retries) so a user can check their endpoint."""
    body = {
        "id": 0,
        "kind": "test",
        "title": "LoRAForge test notification",
        "body": f"Webhook test for {user.username}.",
        "job_id": None,
        "created_at": utcnow().isoformat(),
        "data": {"test": True},
    }
    with _client(settings) as client:
        return post(client, url, body)
