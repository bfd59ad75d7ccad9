"""Login sessions as chains of rotating refresh tokens (opaque, stored as SHA-256 hashes).

Each login starts a family. Refreshing marks the presented token used and issues the next one in
the family. Presenting a token that was already used means two parties hold it (one of them a
thief), so the whole family is revoked and both must log in again.

The family id is also the session id (`sid`) in every access token issued for it: revoking the
family (logout, reuse, a password change or reset) ends those access tokens too, see `is_active`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import RefreshToken, User
from loraforge.errors import AuthenticationFailed
from loraforge.services.accounts.tokens import new_opaque_token, sha256_hex


@dataclass(frozen=True)
class IssuedRefreshToken:
    token: str
    family_id: str
    expires_at: datetime
    remember_me: bool


def issue_refresh_token(
    session: Session,
    *,
    user: User,
    ttl_seconds: int,
    remember_me: bool,
    family_id: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> IssuedRefreshToken:
    """Add a new refresh token (a new family unless `family_id` continues one) to the session."""
    token = new_opaque_token()
    family = family_id or str(uuid.uuid4())
    expires_at = utcnow() + timedelta(seconds=ttl_seconds)
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family,
            token_hash=sha256_hex(token),
            remember_me=remember_me,
            expires_at=expires_at,
            ip=ip,
            user_agent=(user_agent or "")[:255] or None,
        )
    )
    return IssuedRefreshToken(token=token, family_id=family, expires_at=expires_at, remember_me=remember_me)


def find_refresh_token(session: Session, *, token: str) -> RefreshToken | None:
    return session.scalar(select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(token)))


class RefreshReuseDetected(AuthenticationFailed):
    """An already-used refresh token came back; its family has been revoked (and committed)."""

    def __init__(self, *, user_id: int, family_id: str) -> None:
        super().__init__(
            "refresh token reuse detected; all sessions of this login were revoked",
            code="refresh_token_reused",
        )
        self.user_id = user_id
        self.family_id = family_id


def consume_refresh_token(session: Session, *, token: str) -> RefreshToken:
    """Mark a valid refresh token used and return it. Reuse revokes its family.

    The conditional UPDATE makes two concurrent refreshes with one token agree on a single winner.
    """
    row = find_refresh_token(session, token=token)
    now = utcnow()
    if row is None or row.revoked_at is not None:
        raise AuthenticationFailed("invalid refresh token", code="invalid_refresh_token")
    if row.used_at is not None:
        revoke_family(session, family_id=row.family_id)
        raise RefreshReuseDetected(user_id=row.user_id, family_id=row.family_id)
    if row.expires_at <= now:
        raise AuthenticationFailed("refresh token expired", code="refresh_token_expired")
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        revoke_family(session, family_id=row.family_id)
        raise RefreshReuseDetected(user_id=row.user_id, family_id=row.family_id)
    row.used_at = now
    return row


def is_active(session: Session, *, family_id: str) -> bool:
    """Whether the login session still stands: its newest token exists and is not revoked.

    One indexed lookup per request. Revocation marks every token of a family at once, so the newest
    one tells; a family with no rows (its user deleted) is over as well.
    """
    revoked_at = session.execute(
        select(RefreshToken.revoked_at)
        .where(RefreshToken.family_id == family_id)
        .order_by(RefreshToken.id.desc())
        .limit(1)
    ).first()
    return revoked_at is not None and revoked_at[0] is None


def revoke_family(session: Session, *, family_id: str) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def revoke_user_sessions(session: Session, *, user_id: int, keep: Collection[str] = ()) -> None:
    """Revoke every login session of a user, except the families in `keep` (the caller's own)."""
    query = update(RefreshToken).where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
    if keep:
        query = query.where(RefreshToken.family_id.not_in(list(keep)))
    session.execute(query.values(revoked_at=utcnow()).execution_options(synchronize_session=False))
