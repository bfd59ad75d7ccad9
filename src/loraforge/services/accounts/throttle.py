"""Login throttling per account and per client address, stored in the database.

Database-backed so it holds across restarts and across replicas sharing PostgreSQL. An account's
counter restarts after a successful login; an address's does not (one valid account must not let
an attacker reset the counter while guessing others).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import LoginAttempt
from loraforge.errors import RateLimited

# Rows are kept at least this long (the admin stats show recent logins) and pruned as attempts arrive.
_MIN_RETENTION = timedelta(days=7)


def _retry_after(failures: list[datetime], *, max_failures: int, window: timedelta, now: datetime) -> int:
    """Seconds until the count in the window drops below `max_failures`."""
    failures.sort()
    unblocking = failures[len(failures) - max_failures]
    return max(1, math.ceil((unblocking + window - now).total_seconds()))


def check_login_allowed(
    session: Session, *, account: str, ip: str, max_failures: int, window_seconds: int
) -> None:
    """Raise RateLimited when the account or the address has too many recent failures."""
    now = utcnow()
    window = timedelta(seconds=window_seconds)
    start = now - window

    last_success = session.scalar(
        select(LoginAttempt.ts)
        .where(LoginAttempt.account == account, LoginAttempt.success.is_(True), LoginAttempt.ts >= start)
        .order_by(LoginAttempt.ts.desc())
        .limit(1)
    )
    account_since = max(start, last_success) if last_success is not None else start
    account_failures = list(
        session.scalars(
            select(LoginAttempt.ts).where(
                LoginAttempt.account == account,
                LoginAttempt.success.is_(False),
                LoginAttempt.ts >= account_since,
            )
        )
    )
    ip_failures = list(
        session.scalars(
            select(LoginAttempt.ts).where(
                LoginAttempt.ip == ip, LoginAttempt.success.is_(False), LoginAttempt.ts >= start
            )
        )
    )
    waits = [
        _retry_after(failures, max_failures=max_failures, window=window, now=now)
        for failures in (account_failures, ip_failures)
        if len(failures) >= max_failures
    ]
    if waits:
        raise RateLimited(
            "too many failed logins; try again later", retry_after=max(waits), code="login_throttled"
        )


def record_attempt(
    session: Session, *, account: str, ip: str, success: bool, user_id: int | None, window_seconds: int
) -> None:
    retention = max(_MIN_RETENTION, timedelta(seconds=window_seconds))
    session.execute(delete(LoginAttempt).where(LoginAttempt.ts < utcnow() - retention))
    session.add(LoginAttempt(account=account, ip=ip, success=success, user_id=user_id))
