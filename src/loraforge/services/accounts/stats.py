"""The admin dashboard's numbers: users by role and state, active API keys, logins in the last day
and the most recent successful ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ApiKey, LoginAttempt, Role, User


@dataclass(frozen=True)
class RecentLogin:
    user_id: int | None
    username: str
    at: datetime
    ip: str


@dataclass(frozen=True)
class UserStats:
    users_total: int
    users_by_role: dict[str, int]
    users_active: int
    users_disabled: int
    api_keys_active: int
    logins_last_24h: int
    failed_logins_last_24h: int
    recent_logins: list[RecentLogin] = field(default_factory=list)


def stats(session: Session, *, recent: int = 10) -> UserStats:
    """Counts over all accounts; `recent` successful logins, newest first."""
    now = utcnow()
    by_role = {role.value: 0 for role in Role}
    for role_value, count in session.execute(select(User.role, func.count()).group_by(User.role)):
        by_role[role_value] = count
    disabled = session.scalar(select(func.count()).select_from(User).where(User.disabled.is_(True))) or 0
    total = sum(by_role.values())
    keys = (
        session.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.revoked_at.is_(None), or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now))
        )
        or 0
    )
    day_ago = now - timedelta(days=1)

    def logins(success: bool) -> int:
        return (
            session.scalar(
                select(func.count())
                .select_from(LoginAttempt)
                .where(LoginAttempt.success.is_(success), LoginAttempt.ts >= day_ago)
            )
            or 0
        )

    recent_rows = session.execute(
        select(LoginAttempt.user_id, User.username, LoginAttempt.ts, LoginAttempt.ip)
        .join(User, User.id == LoginAttempt.user_id)
        .where(LoginAttempt.success.is_(True))
        .order_by(LoginAttempt.ts.desc(), LoginAttempt.id.desc())
        .limit(recent)
    ).all()
    return UserStats(
        users_total=total,
        users_by_role=by_role,
        users_active=total - disabled,
        users_disabled=disabled,
        api_keys_active=keys,
        logins_last_24h=logins(True),
        failed_logins_last_24h=logins(False),
        recent_logins=[RecentLogin(user_id=r[0], username=r[1], at=r[2], ip=r[3]) for r in recent_rows],
    )
