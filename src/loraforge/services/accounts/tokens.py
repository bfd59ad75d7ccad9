"""Access tokens: short-lived HS256 JWTs. Refresh tokens are opaque and live in the database.

An access token names the login session it belongs to (`sid`, the refresh-token family), so the
server can refuse it as soon as that session is revoked instead of waiting for it to expire.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt

from loraforge.db.base import utcnow
from loraforge.errors import AuthenticationFailed

ALGORITHM = "HS256"
ISSUER = "loraforge"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105  (a claim value, not a secret)


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int


@dataclass(frozen=True)
class AccessClaims:
    """What a valid access token says: whose it is and which login session issued it."""

    user_id: int
    session_id: str


def issue_access_token(*, user_id: int, session_id: str, secret: str, ttl_seconds: int) -> AccessToken:
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "sid": session_id,
        "iss": ISSUER,
        "typ": ACCESS_TOKEN_TYPE,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "jti": secrets.token_hex(8),
    }
    return AccessToken(token=jwt.encode(claims, secret, algorithm=ALGORITHM), expires_in=ttl_seconds)


def decode_access_token(*, token: str, secret: str) -> AccessClaims:
    """The claims of a valid access token; AuthenticationFailed for anything else.

    Only HS256 is accepted, which rejects `alg: none` and algorithm-confusion tokens outright.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            # A token without `sid` could not be revoked with its session, so it is not accepted.
            options={"require": ["exp", "iat", "sub", "iss", "sid"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("access token expired", code="token_expired") from None
    except jwt.PyJWTError:
        raise AuthenticationFailed("invalid access token", code="invalid_token") from None
    if claims.get("typ") != ACCESS_TOKEN_TYPE:
        raise AuthenticationFailed("invalid access token", code="invalid_token")
    session_id = claims["sid"]
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError):
        raise AuthenticationFailed("invalid access token", code="invalid_token") from None
    if not isinstance(session_id, str) or not session_id:
        raise AuthenticationFailed("invalid access token", code="invalid_token")
    return AccessClaims(user_id=user_id, session_id=session_id)


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
