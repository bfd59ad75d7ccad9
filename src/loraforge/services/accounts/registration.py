"""Self-service registration: a per-address rate limit, then the usual account rules.

Every attempt that reaches the rules counts (a refused one too), `max_per_hour` per client address,
stored in the database so the limit holds across restarts and replicas. A taken username or email is
answered with one message for both, so the endpoint does not tell which accounts exist; together
with the limit this keeps probing for accounts slow.
"""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import User
from loraforge.db.models.accounts import RegistrationAttempt
from loraforge.errors import Conflict, FieldIssue, RateLimited
from loraforge.services.accounts import users
from loraforge.services.platform.audit import AuditAction

WINDOW = timedelta(hours=1)
TAKEN_MESSAGE = "this username or email cannot be used; choose another, or log in if the account is yours"


def check_and_record_attempt(session: Session, *, ip: str, max_per_hour: int) -> None:
    """Count this attempt (committed at once, so a refused registration counts too), or RateLimited."""
    now = utcnow()
    start = now - WINDOW
    query = select(RegistrationAttempt.ts).where(
        RegistrationAttempt.ip == ip, RegistrationAttempt.ts >= start
    )
    recent = sorted(session.scalars(query))
    if len(recent) >= max_per_hour:
        unblocking = recent[len(recent) - max_per_hour]
        retry_after = max(1, math.ceil((unblocking + WINDOW - now).total_seconds()))
        session.rollback()
        raise RateLimited(
            "too many registrations from this address; try again later",
            retry_after=retry_after,
            code="registration_throttled",
        )
    session.execute(delete(RegistrationAttempt).where(RegistrationAttempt.ts < start))
    session.add(RegistrationAttempt(ip=ip, ts=now))
    session.commit()


def register(
    session: Session, *, username: str, email: str, password: str, ip: str, max_per_hour: int
) -> User:
    """Create a researcher account for an anonymous caller (the registration endpoint)."""
    check_and_record_attempt(session, ip=ip, max_per_hour=max_per_hour)
    try:
        return users.create_user(
            session,
            username=username,
            email=email,
            password=password,
            ip=ip,
            action=AuditAction.user_registered,
        )
    except (Conflict, IntegrityError):  # IntegrityError: the same name registered concurrently
        session.rollback()
        raise Conflict(
            TAKEN_MESSAGE,
            code="username_or_email_taken",
            fields=[FieldIssue("username", TAKEN_MESSAGE), FieldIssue("email", TAKEN_MESSAGE)],
        ) from None
