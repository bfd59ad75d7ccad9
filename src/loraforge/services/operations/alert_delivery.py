"""Telling people about an alert, when it is raised and when it is resolved.

In the transaction that raises or resolves it (`record`): a notification for every active operator and
admin, which the existing pipeline shows in their bell and POSTs to their own webhook
(`platform.notifications` / `platform.webhooks`); and the alert's mail and operations webhook marked
`pending` (or `none` when nothing is configured) in `alert.delivery`.

After the commit (`dispatch`), a worker thread sends what is pending: one mail to `alert_emails` (or
every active operator's and admin's address) when an SMTP server is set, and a POST to
`alert_webhook_url` through the outbound policy. The network never runs under a lock or in the
caller's thread, so a dead SMTP server costs the worker its timeout and nothing else: the health loop
goes on, and the failure is recorded as `failed` with a short reason. Whatever is still `pending`
after a restart is sent the next time the rules run.

`alert.delivery`: `{"notified": n, "webhook": s, "email": s, "webhook_error"?, "email_error"?,
"resolution": {the same keys, for the resolution}}`, s = pending | sent | failed | none.

`LOCK` serialises every read-modify-write of alert rows in this process (the rules, a person's
acknowledge or resolve, the worker's results), so no writer overwrites another's part of `delivery`.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from loraforge.db.base import utcnow
from loraforge.db.models import Alert, Node, Notification, Role, User
from loraforge.services.platform import mail, outbound_transport, webhooks
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.alerts")

PENDING, SENT, FAILED, NONE = "pending", "sent", "failed", "none"
RAISED, RESOLVED = "raised", "resolved"
KIND_RAISED, KIND_RESOLVED = "alert", "alert.resolved"
LOCK = threading.RLock()
_IDLE_EXIT_SECONDS = 30.0

SessionFactory = sessionmaker[Session]


def factory_of(session: Session) -> SessionFactory:
    """Sessions on the caller's database, for the worker thread (the caller's session stays its own)."""
    return sessionmaker(bind=session.get_bind(), expire_on_commit=False)


def staff_users(session: Session) -> list[User]:
    roles = [Role.operator.value, Role.admin.value]
    query = select(User).where(User.role.in_(roles), User.disabled.is_(False)).order_by(User.id)
    return list(session.scalars(query))


def recipients(session: Session, settings: Settings) -> list[str]:
    configured = [a.strip() for a in (settings.alert_emails or "").split(",") if a.strip()]
    return configured or [u.email for u in staff_users(session) if u.email]


def _phase(delivery: dict[str, Any], event: str) -> dict[str, Any]:
    return delivery if event == RAISED else delivery.setdefault("resolution", {})


def record(session: Session, settings: Settings, alert: Alert, *, event: str) -> None:
    """Notify every active operator and admin, and mark mail and webhook pending (caller commits)."""
    now = utcnow()
    staff = staff_users(session)
    kind = KIND_RAISED if event == RAISED else KIND_RESOLVED
    title = alert.title if event == RAISED else f"Resolved: {alert.title}"
    body = alert.message if event == RAISED else _resolution_line(session, alert)
    data = {"alert_id": alert.id, "rule": alert.rule, "severity": alert.severity, "node_id": alert.node_id}
    for user in staff:
        session.add(
            Notification(
                user_id=user.id, job_id=alert.job_id, kind=kind, title=title[:300], body=body[:4000],
                data=data, created_at=now, webhook_status=PENDING if user.webhook_url else None,
                webhook_attempts=0, webhook_next_at=now if user.webhook_url else None,
            )
        )  # fmt: skip
    delivery = copy.deepcopy(alert.delivery or {})
    phase = _phase(delivery, event)
    phase["notified"] = len(staff)
    phase["webhook"] = PENDING if settings.alert_webhook_url else NONE
    has_mail = mail.configured(settings) and bool(recipients(session, settings))
    phase["email"] = PENDING if has_mail else NONE
    alert.delivery = delivery


def _resolution_line(session: Session, alert: Alert) -> str:
    if alert.resolved_by is None:
        return "The condition cleared by itself."
    user = session.get(User, alert.resolved_by)
    return f"Resolved by {user.username if user else 'a deleted user'}."


def payload(session: Session, alert: Alert, event: str) -> dict[str, Any]:
    """The body POSTed to `alert_webhook_url` (times as ISO 8601 UTC)."""
    node = session.get(Node, alert.node_id) if alert.node_id is not None else None
    return {
        "type": f"alert.{event}",
        "alert": {
            "id": alert.id, "rule": alert.rule, "key": alert.key, "severity": alert.severity,
            "status": alert.status, "title": alert.title, "message": alert.message,
            "node_id": alert.node_id, "node_name": node.name if node else None, "job_id": alert.job_id,
            "data": alert.data or {}, "raised_at": alert.raised_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "resolved_automatically": alert.resolved_at is not None and alert.resolved_by is None,
        },
    }  # fmt: skip


def _mail(session: Session, settings: Settings, alert: Alert, event: str, to: list[str]) -> mail.Mail:
    if event == RAISED:
        subject = f"[LoRAForge] {alert.severity}: {alert.title}"
        lines = [alert.message, "", f"Raised at {alert.raised_at.isoformat()} (rule {alert.rule})."]
    else:
        subject = f"[LoRAForge] resolved: {alert.title}"
        lines = [_resolution_line(session, alert)]
    if settings.public_url:
        lines += ["", f"{settings.public_url.rstrip('/')}/operations/alerts"]
    return mail.Mail(to=tuple(to), subject=subject, body="\n".join(lines) + "\n")


# ---- the worker ------------------------------------------------------------------------------------

_tasks: queue.Queue[tuple[SessionFactory, Settings, int]] = queue.Queue()
# By database and alert: one process may serve several databases (the tests do), whose ids repeat.
_inflight: set[tuple[str, int]] = set()
_state = threading.Lock()
_worker: threading.Thread | None = None


def pending(alert: Alert) -> bool:
    delivery = alert.delivery or {}
    phases = [delivery, delivery.get("resolution") or {}]
    return any(phase.get(channel) == PENDING for phase in phases for channel in ("webhook", "email"))


def _database(factory: SessionFactory) -> str:
    bind = factory.kw.get("bind")
    return f"{id(bind)}:{bind}"


def dispatch(factory: SessionFactory, settings: Settings, alert_ids: Iterable[int]) -> None:
    """Hand the alerts' pending mail and webhook to the worker (at most once at a time per alert)."""
    global _worker
    with _state:
        for alert_id in alert_ids:
            if (_database(factory), alert_id) not in _inflight:
                _inflight.add((_database(factory), alert_id))
                _tasks.put((factory, settings, alert_id))
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="alert-delivery", daemon=True)
            _worker.start()


def _work() -> None:
    global _worker
    while True:
        try:
            factory, settings, alert_id = _tasks.get(timeout=_IDLE_EXIT_SECONDS)
        except queue.Empty:
            with _state:
                if _tasks.empty():
                    _worker = None
                    return
            continue
        try:
            deliver(factory, settings, alert_id)
        except Exception:
            logger.exception("delivering alert %s failed", alert_id)
        finally:
            with _state:
                _inflight.discard((_database(factory), alert_id))


def deliver(factory: SessionFactory, settings: Settings, alert_id: int) -> None:
    """Send what is pending for one alert now (in the calling thread), then record the outcome."""
    jobs: list[tuple[str, str, Any]] = []  # (event, channel, what to send)
    with LOCK, factory() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return
        delivery = alert.delivery or {}
        for event in (RAISED, RESOLVED):
            phase = delivery if event == RAISED else delivery.get("resolution") or {}
            if phase.get("webhook") == PENDING:
                jobs.append((event, "webhook", payload(session, alert, event)))
            if phase.get("email") == PENDING:
                to = recipients(session, settings)
                jobs.append((event, "email", _mail(session, settings, alert, event, to) if to else None))
    results = [(event, channel, *_send(settings, channel, what)) for event, channel, what in jobs]
    if not results:
        return
    with LOCK, factory() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return
        delivery = copy.deepcopy(alert.delivery or {})
        for event, channel, status, error in results:
            phase = _phase(delivery, event)
            if phase.get(channel) != PENDING:
                continue
            phase[channel] = status
            if error:
                phase[f"{channel}_error"] = error
        alert.delivery = delivery
        session.commit()


def _send(settings: Settings, channel: str, what: Any) -> tuple[str, str | None]:
    if what is None:
        return NONE, None
    if channel == "email":
        try:
            mail.send(settings, what)
        except mail.MailError as exc:
            return FAILED, str(exc)
        return SENT, None
    url = settings.alert_webhook_url
    if not url:
        return NONE, None
    with outbound_transport.client(settings, timeout=settings.webhook_timeout_seconds) as client:
        result = webhooks.post(client, url, what)
    if result.ok:
        return SENT, None
    logger.warning("the alert webhook failed: %s", result.error)
    return FAILED, result.error
