"""Single-use links sent by mail: a forgotten password (`reset`) and an admin's invitation (`invite`).

The token is `secrets.token_urlsafe(32)`, in the mailed link only; the database keeps its SHA-256. A
link works once, until it expires (`password_reset_ttl_minutes`, `invite_ttl_hours`); a new reset
request retires the user's older unused reset links. Both kinds are redeemed by the same confirm step:
the new password is checked like any other, set, and every session of the user is revoked.

A reset request answers the same whether or not the address belongs to an account, and whether or not
mail went out (no SMTP server: a warning in the log): what it does is never visible to the caller.
The mail is sent after the answer (`request_reset` returns it) so timing does not tell either. Limits:
`registration_max_per_hour` requests per client address (429 `password_reset_throttled`), counted in
the registration-attempts table under a key of their own, and a few mails per account per hour
(beyond that requests are dropped silently: nobody can flood an inbox through the form).
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import AccountLink, Role, User
from loraforge.db.models.accounts import RegistrationAttempt
from loraforge.errors import Conflict, FieldIssue, RateLimited, ServiceError
from loraforge.services.accounts import passwords, users
from loraforge.services.accounts.sessions import revoke_user_sessions
from loraforge.services.accounts.tokens import sha256_hex
from loraforge.services.platform import mail
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.accounts")

RESET, INVITE = "reset", "invite"
RESET_MAILS_PER_HOUR = 3
_WINDOW = timedelta(hours=1)
_THROTTLE_KEY = "reset:"  # keeps these counts apart from registrations' in the shared table
# An invited account's password hash until the invitation is accepted: not an argon2 hash, so no
# password ever matches it (passwords.verify_password answers False for it).
UNUSABLE_PREFIX = "!invited:"
REQUEST_ANSWER = (
    "If an account has this email address, a link to choose a new password is on its way. "
    "Check your inbox (and the spam folder)."
)


class InvalidToken(ServiceError):
    """The link's token is unknown, used, expired or retired (HTTP 400)."""

    default_code = "invalid_token"
    http_status = 400


def _invalid() -> InvalidToken:
    message = "this link is invalid or has expired; ask for a new one"
    return InvalidToken(message, fields=[FieldIssue("token", message)])


def link_base(settings: Settings, request_origin: str) -> str:
    """Where links in mail point: `public_url` when set, else the origin the request came to."""
    return (settings.public_url or request_origin).rstrip("/")


def _issue(session: Session, *, user: User, purpose: str, ttl: timedelta, ip: str | None) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        AccountLink(
            user_id=user.id, purpose=purpose, token_hash=sha256_hex(token), created_at=now,
            expires_at=now + ttl, ip=ip,
        )
    )  # fmt: skip
    return token


def _retire(session: Session, *, user_id: int, purpose: str | None, now: datetime) -> None:
    """Unused links of the user (of `purpose`, or all) stop working now."""
    query = update(AccountLink).where(
        AccountLink.user_id == user_id, AccountLink.used_at.is_(None), AccountLink.expires_at > now
    )
    if purpose is not None:
        query = query.where(AccountLink.purpose == purpose)
    session.execute(query.values(expires_at=now).execution_options(synchronize_session=False))


def _check_address(session: Session, *, ip: str, max_per_hour: int) -> None:
    """Count this request for its client address (committed at once), or RateLimited."""
    now = utcnow()
    start = now - _WINDOW
    key = (_THROTTLE_KEY + ip)[:64]
    recent = sorted(
        session.scalars(
            select(RegistrationAttempt.ts).where(
                RegistrationAttempt.ip == key, RegistrationAttempt.ts >= start
            )
        )
    )
    if len(recent) >= max_per_hour:
        unblocking = recent[len(recent) - max_per_hour]
        session.rollback()
        raise RateLimited(
            "too many password reset requests from this address; try again later",
            retry_after=max(1, math.ceil((unblocking + _WINDOW - now).total_seconds())),
            code="password_reset_throttled",
        )
    session.execute(delete(RegistrationAttempt).where(RegistrationAttempt.ts < start))
    session.add(RegistrationAttempt(ip=key, ts=now))
    session.commit()


def request_reset(
    session: Session, settings: Settings, *, email: str, ip: str, request_origin: str
) -> mail.Mail | None:
    """Issue a reset link for the account with this address, if there is one that may have it, and
    return the mail to send (None: nothing to send; the caller answers the same either way)."""
    _check_address(session, ip=ip, max_per_hour=settings.registration_max_per_hour)
    try:
        address = users.normalize_email(email)
    except ValueError:
        return None
    user = session.scalar(select(User).where(User.email == address))
    if user is None or user.disabled:
        return None
    now = utcnow()
    mine = (
        AccountLink.user_id == user.id,
        AccountLink.purpose == RESET,
        AccountLink.created_at >= now - _WINDOW,
    )
    recent = session.scalar(select(func.count()).select_from(AccountLink).where(*mine))
    if (recent or 0) >= RESET_MAILS_PER_HOUR:
        logger.warning("password reset for user %s not sent: %s mails in the last hour", user.id, recent)
        return None
    _retire(session, user_id=user.id, purpose=RESET, now=now)
    ttl = timedelta(minutes=settings.password_reset_ttl_minutes)
    token = _issue(session, user=user, purpose=RESET, ttl=ttl, ip=ip)
    users.audit_user(
        session, action=AuditAction.password_reset_requested, actor=None, target=user, ip=ip,
        details={"username": user.username, "mailed": mail.configured(settings)},
    )  # fmt: skip
    session.commit()
    if not mail.configured(settings):
        logger.warning("password reset for user %s not mailed: no SMTP server (LORAFORGE_SMTP_HOST)", user.id)
        return None
    url = f"{link_base(settings, request_origin)}/reset-password?token={token}"
    body = (
        f"Hello {user.username},\n\nsomeone (hopefully you) asked to reset the LoRAForge password of this "
        f"account. Choose a new one here:\n\n{url}\n\nThe link works once and expires in "
        f"{settings.password_reset_ttl_minutes} minutes. If you did not ask, ignore this mail: your "
        "password stays as it is.\n"
    )
    return mail.Mail(to=(user.email,), subject="Reset your LoRAForge password", body=body)


@dataclass(frozen=True)
class Confirmed:
    purpose: str  # reset | invite
    user: User


def confirm(session: Session, *, token: str, new_password: str, ip: str | None) -> Confirmed:
    """Redeem a reset or invitation link: the password is set, every session ends, the link is used."""
    now = utcnow()
    link = session.scalar(select(AccountLink).where(AccountLink.token_hash == sha256_hex(token)))
    if (
        link is None
        or link.used_at is not None
        or link.expires_at <= now
        or link.purpose not in (RESET, INVITE)
    ):
        raise _invalid()
    user = session.get(User, link.user_id)
    if user is None or user.disabled:
        raise _invalid()
    passwords.validate_password(new_password, field="new_password", user_inputs=(user.username, user.email))
    # The conditional UPDATE makes two requests with one token agree on a single winner.
    claimed = session.execute(
        update(AccountLink)
        .where(AccountLink.id == link.id, AccountLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        session.rollback()
        raise _invalid()
    user.password_hash = passwords.hash_password(new_password)
    revoke_user_sessions(session, user_id=user.id)
    _retire(session, user_id=user.id, purpose=None, now=now)
    action = (
        AuditAction.invitation_accepted if link.purpose == INVITE else AuditAction.password_reset_completed
    )
    users.audit_user(
        session, action=action, actor=None, target=user, ip=ip, details={"username": user.username}
    )
    session.commit()
    return Confirmed(purpose=link.purpose, user=user)


@dataclass(frozen=True)
class Invited:
    user: User
    mail_sent: bool
    invite_url: str | None  # only when the mail did not go out: the admin passes it on


def invite(
    session: Session, settings: Settings, *, actor: User, username: str, email: str, role: Role,
    ip: str | None, request_origin: str,
) -> Invited:  # fmt: skip
    """An admin creates an account that its owner activates by choosing a password (link by mail)."""
    _, address = users.validate_identity(username, email)
    assert address is not None
    users.ensure_unique(session, username=username, email=address, exclude_id=None)
    user = User(
        username=username, email=address, password_hash=UNUSABLE_PREFIX + secrets.token_urlsafe(16),
        role=role.value, disabled=False,
    )  # fmt: skip
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # the same name or address taken concurrently
        session.rollback()
        raise Conflict("this username or email is already taken", code="username_or_email_taken") from None
    ttl = timedelta(hours=settings.invite_ttl_hours)
    token = _issue(session, user=user, purpose=INVITE, ttl=ttl, ip=ip)
    users.audit_user(
        session, action=AuditAction.user_invited, actor=actor, target=user, ip=ip,
        details={"username": username, "role": role.value},
    )  # fmt: skip
    session.commit()
    url = f"{link_base(settings, request_origin)}/reset-password?token={token}&invite=1"
    sent = False
    if mail.configured(settings):
        body = (
            f"Hello {username},\n\n{actor.username} invited you to LoRAForge as {role.value}. Choose your "
            f"password here to activate the account:\n\n{url}\n\nThe link works once and expires in "
            f"{settings.invite_ttl_hours} hours. Your username is {username}.\n"
        )
        subject = "You are invited to LoRAForge"
        sent = mail.send_quietly(settings, mail.Mail(to=(address,), subject=subject, body=body))
    else:
        logger.warning("invitation of user %s not mailed: no SMTP server (LORAFORGE_SMTP_HOST)", user.id)
    return Invited(user=user, mail_sent=sent, invite_url=None if sent else url)


def invitation_pending(user: User) -> bool:
    return user.password_hash.startswith(UNUSABLE_PREFIX)
