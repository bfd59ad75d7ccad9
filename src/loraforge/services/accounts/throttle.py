"""Login throttling, stored in the database so it holds across restarts and across replicas.

Two limits, both over the last `window_seconds`:

- per account and client address: `max_failures` failed logins of one account from one address.
  The account is the RESOLVED one (its user id), so typing the email instead of the username is the
  same account; an unknown name counts as itself. The counter restarts after a successful login of
  that account from that address. A lock on the account alone would let anyone lock the owner out
  from anywhere; this one only stops the address that keeps failing.
- per address, over all accounts: `ADDRESS_FACTOR * max_failures` failures. This stops one address
  from trying a common password on many accounts (spraying); it never restarts on a success, so one
  valid account cannot reset the count while the others are guessed.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import LoginAttempt
from loraforge.errors import RateLimited

# Rows are kept at least this long (the admin stats show recent logins) and pruned as attempts arrive.
_MIN_RETENTION = timedelta(days=7)
# An address may fail on a few different accounts (people behind one NAT mistyping) before it waits.
ADDRESS_FACTOR = 3


def _retry_after(failures: list[datetime], *, max_failures: int, window: timedelta, now: datetime) -> int:
    """Seconds until the count in the window drops below `max_failures`."""
    failures.sort()
    unblocking = failures[len(failures) - max_failures]
    return max(1, math.ceil((unblocking + window - now).total_seconds()))


def _same_account(*, user_id: int | None, account: str) -> ColumnElement[bool]:
    if user_id is not None:
        return LoginAttempt.user_id == user_id
    return and_(LoginAttempt.user_id.is_(None), LoginAttempt.account == account)


def check_login_allowed(
    session: Session,
    *,
    user_id: int | None,
    account: str,
    ip: str,
    max_failures: int,
    window_seconds: int,
) -> None:
    """Raise RateLimited when this account from this address, or this address, failed too often.

    `user_id` is the account `account` (the typed name) resolves to, None when it resolves to none.
    """
    now = utcnow()
    window = timedelta(seconds=window_seconds)
    start = now - window
    same_account = _same_account(user_id=user_id, account=account)

    last_success = session.scalar(
        select(LoginAttempt.ts)
        .where(same_account, LoginAttempt.ip == ip, LoginAttempt.success.is_(True), LoginAttempt.ts >= start)
        .order_by(LoginAttempt.ts.desc())
        .limit(1)
    )
    since = max(start, last_success) if last_success is not None else start
    pair_failures = list(
        session.scalars(
            select(LoginAttempt.ts).where(
                same_account, LoginAttempt.ip == ip, LoginAttempt.success.is_(False), LoginAttempt.ts >= since
            )
        )
    )
    address_failures = list(
        session.scalars(
            select(LoginAttempt.ts).where(
                LoginAttempt.ip == ip, LoginAttempt.success.is_(False), LoginAttempt.ts >= start
            )
        )
    )
    waits = [
        _retry_after(failures, max_failures=limit, window=window, now=now)
        for failures, limit in (
            (pair_failures, max_failures),
            (address_failures, max_failures * ADDRESS_FACTOR),
        )
        if len(failures) >= limit
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
