"""Authentication: login, refresh rotation, logout, and resolving a bearer credential to a user."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ApiKey, User
from loraforge.errors import AuthenticationFailed, RateLimited
from loraforge.services.accounts import api_keys, passwords, sessions, throttle, tokens, users
from loraforge.services.platform import audit
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings


@dataclass(frozen=True)
class LoginResult:
    user: User
    access_token: str
    expires_in: int
    refresh: sessions.IssuedRefreshToken


def _issue(
    session: Session,
    *,
    settings: Settings,
    user: User,
    remember_me: bool,
    family_id: str | None,
    ip: str | None,
    user_agent: str | None,
) -> LoginResult:
    ttl = settings.remember_me_ttl_seconds if remember_me else settings.refresh_token_ttl_seconds
    refresh = sessions.issue_refresh_token(
        session,
        user=user,
        ttl_seconds=ttl,
        remember_me=remember_me,
        family_id=family_id,
        ip=ip,
        user_agent=user_agent,
    )
    access = tokens.issue_access_token(
        user_id=user.id,
        session_id=refresh.family_id,
        secret=settings.signing_key(),
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    return LoginResult(user=user, access_token=access.token, expires_in=access.expires_in, refresh=refresh)


def login(
    session: Session,
    *,
    settings: Settings,
    username_or_email: str,
    password: str,
    remember_me: bool,
    ip: str,
    user_agent: str | None,
) -> LoginResult:
    """Check the throttle, then the password; every outcome is recorded and audited.

    The throttle counts the account the name resolves to (username and email are one account),
    per client address (see `throttle`).
    """
    account = username_or_email.strip().lower()[:254]
    user = users.find_by_login(session, username_or_email=account)
    try:
        throttle.check_login_allowed(
            session,
            user_id=user.id if user is not None else None,
            account=account,
            ip=ip,
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_window_seconds,
        )
    except RateLimited:
        audit.record(
            session,
            action=AuditAction.login_throttled,
            actor=None,
            target_type="user" if user else None,
            target_id=user.id if user else None,
            ip=ip,
            details={"account": account},
        )
        session.commit()
        raise

    if user is None:
        passwords.verify_dummy(password)
        ok = False
    else:
        ok = passwords.verify_password(user.password_hash, password)
    if not ok or user is None or user.disabled:
        throttle.record_attempt(
            session,
            account=account,
            ip=ip,
            success=False,
            user_id=user.id if user else None,
            window_seconds=settings.login_window_seconds,
        )
        reason = "unknown_account" if user is None else ("wrong_password" if not ok else "disabled")
        audit.record(
            session,
            action=AuditAction.login_failed,
            actor=user,
            target_type="user" if user else None,
            target_id=user.id if user else None,
            ip=ip,
            details={"account": account, "reason": reason},
        )
        session.commit()
        # One message for every reason, so the response does not reveal which accounts exist.
        raise AuthenticationFailed("wrong username/email or password", code="invalid_credentials")

    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = utcnow()
    throttle.record_attempt(
        session,
        account=account,
        ip=ip,
        success=True,
        user_id=user.id,
        window_seconds=settings.login_window_seconds,
    )
    audit.record(
        session,
        action=AuditAction.login_succeeded,
        actor=user,
        target_type="user",
        target_id=user.id,
        ip=ip,
        details={"remember_me": remember_me},
    )
    result = _issue(
        session,
        settings=settings,
        user=user,
        remember_me=remember_me,
        family_id=None,
        ip=ip,
        user_agent=user_agent,
    )
    session.commit()
    return result


def refresh(
    session: Session, *, settings: Settings, refresh_token: str, ip: str | None, user_agent: str | None
) -> LoginResult:
    """Rotate: consume the presented token and issue the next one of its family."""
    try:
        row = sessions.consume_refresh_token(session, token=refresh_token)
    except sessions.RefreshReuseDetected as exc:
        audit.record(
            session,
            action=AuditAction.refresh_reuse_detected,
            actor=session.get(User, exc.user_id),
            target_type="user",
            target_id=exc.user_id,
            ip=ip,
            details={"family_id": exc.family_id},
        )
        session.commit()
        raise
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        session.rollback()
        raise AuthenticationFailed("account disabled", code="account_disabled")
    result = _issue(
        session,
        settings=settings,
        user=user,
        remember_me=row.remember_me,
        family_id=row.family_id,
        ip=ip,
        user_agent=user_agent,
    )
    session.commit()
    return result


def logout(session: Session, *, refresh_token: str | None, ip: str | None) -> None:
    """Revoke the session's whole token family. Unknown or missing tokens are ignored."""
    if not refresh_token:
        return
    row = sessions.find_refresh_token(session, token=refresh_token)
    if row is None:
        return
    sessions.revoke_family(session, family_id=row.family_id)
    audit.record(
        session,
        action=AuditAction.logout,
        actor=session.get(User, row.user_id),
        target_type="user",
        target_id=row.user_id,
        ip=ip,
    )
    session.commit()


@dataclass(frozen=True)
class Principal:
    """Who is calling, and with what: an access token (of login session `session_id`) or an API key."""

    user: User
    api_key: ApiKey | None = None
    session_id: str | None = None


def authenticate_bearer(session: Session, *, settings: Settings, credential: str) -> Principal:
    """Resolve `Authorization: Bearer <credential>`; AuthenticationFailed for anything not valid now.

    The one check every HTTP request and WebSocket goes through: an access token is refused as soon
    as its login session is revoked (logout, refresh-token reuse, a password change or reset), not
    only when it expires; an API key as soon as it is revoked or expired; both once the user is
    disabled or deleted.
    """
    if api_keys.looks_like_api_key(credential):
        user, api_key = api_keys.authenticate_key(session, secret=credential)
        if user.disabled:
            raise AuthenticationFailed("account disabled", code="account_disabled")
        return Principal(user=user, api_key=api_key)
    claims = tokens.decode_access_token(token=credential, secret=settings.signing_key())
    found = session.get(User, claims.user_id)
    if found is None:
        raise AuthenticationFailed("user no longer exists", code="invalid_token")
    if found.disabled:
        raise AuthenticationFailed("account disabled", code="account_disabled")
    if not sessions.is_active(session, family_id=claims.session_id):
        raise AuthenticationFailed("this session has ended; log in again", code="session_revoked")
    return Principal(user=found, session_id=claims.session_id)


def caller_sessions(session: Session, *, principal: Principal, refresh_token: str | None) -> list[str]:
    """The login sessions the caller holds in this request: its access token's and its cookie's."""
    families = [principal.session_id] if principal.session_id is not None else []
    row = sessions.find_refresh_token(session, token=refresh_token) if refresh_token else None
    if row is not None and row.user_id == principal.user.id and row.family_id not in families:
        families.append(row.family_id)
    return families
