"""Personal API keys: `lf_` + 43 random characters, shown once, stored as a SHA-256 hash.

The first characters (the prefix) are stored in clear so users can tell their keys apart and so a
lookup can find candidates by prefix before the constant-time hash comparison.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ApiKey, User
from loraforge.errors import AuthenticationFailed, NotFound
from loraforge.services.accounts.tokens import sha256_hex
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction

KEY_MARKER = "lf_"
PREFIX_LENGTH = len(KEY_MARKER) + 8
# Writing last_used_at on every request would turn each read into a write; minute precision is plenty.
_LAST_USED_RESOLUTION = timedelta(seconds=60)


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_MARKER)


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str


def create_key(
    session: Session, *, user: User, name: str, expires_in_days: int | None, ip: str | None
) -> CreatedKey:
    secret = KEY_MARKER + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days is not None else None
    key = ApiKey(
        user_id=user.id,
        name=name.strip(),
        prefix=secret[:PREFIX_LENGTH],
        key_hash=sha256_hex(secret),
        expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        action=AuditAction.api_key_created,
        actor=user,
        target_type="api_key",
        target_id=key.id,
        ip=ip,
        details={
            "name": key.name,
            "prefix": key.prefix,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    session.commit()
    return CreatedKey(key=key, secret=secret)


def list_keys(session: Session, *, actor: User, owner_id: int) -> list[ApiKey]:
    """The owner's keys that are not revoked (expired ones stay visible until revoked)."""
    ownership.ensure_access(actor, owner_id, resource="user")
    return list(
        session.scalars(
            select(ApiKey)
            .where(ApiKey.user_id == owner_id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        )
    )


def revoke_key(session: Session, *, actor: User, key_id: int, ip: str | None) -> None:
    """Revoke a key. Keys are private: anyone but the owner gets NotFound."""
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        raise NotFound("API key not found", code="api_key_not_found")
    ownership.ensure_access(actor, key.user_id, resource="API key")
    key.revoked_at = utcnow()
    audit.record(
        session,
        action=AuditAction.api_key_revoked,
        actor=actor,
        target_type="api_key",
        target_id=key.id,
        ip=ip,
        details={"name": key.name, "prefix": key.prefix, "owner_id": key.user_id},
    )
    session.commit()


def revoke_all_keys(session: Session, *, user_id: int) -> int:
    """Revoke every live key of a user (after a password change or reset); returns how many.

    Not committed: the caller commits it together with the change that asked for it.
    """
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def authenticate_key(session: Session, *, secret: str) -> tuple[User, ApiKey]:
    """The user a presented key belongs to; AuthenticationFailed if unknown, revoked or expired."""
    presented_hash = sha256_hex(secret)
    match: ApiKey | None = None
    for candidate in session.scalars(select(ApiKey).where(ApiKey.prefix == secret[:PREFIX_LENGTH])):
        if hmac.compare_digest(candidate.key_hash, presented_hash):
            match = candidate
    if match is None or match.revoked_at is not None:
        raise AuthenticationFailed("invalid API key", code="invalid_api_key")
    now = utcnow()
    if match.expires_at is not None and match.expires_at <= now:
        raise AuthenticationFailed("API key expired", code="api_key_expired")
    if match.last_used_at is None or now - match.last_used_at > _LAST_USED_RESOLUTION:
        match.last_used_at = now
        session.commit()
    return match.user, match
