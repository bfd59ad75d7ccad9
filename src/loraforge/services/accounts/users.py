"""Users: the username/email rules, creation, profile edits, admin management and stats."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ApiKey, LoginAttempt, Role, User
from loraforge.errors import Conflict, FieldIssue, InvalidInput, NotFound
from loraforge.services.accounts import passwords
from loraforge.services.accounts.sessions import revoke_user_sessions
from loraforge.services.platform import audit
from loraforge.services.platform.audit import AuditAction

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{3,32}$")
USERNAME_RULE = "3–32 characters: letters, digits, '_' or '-'"


def check_username(username: str) -> str:
    """The username if valid; ValueError with the rule otherwise (used by schemas and the CLI)."""
    if not USERNAME_PATTERN.fullmatch(username):
        raise ValueError(f"username must be {USERNAME_RULE}")
    return username


def normalize_email(email: str) -> str:
    """The normalised, lower-cased address; ValueError if it is not a valid address.

    Deliverability (DNS) is not checked: servers are often offline and users type internal domains.
    """
    try:
        result = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized.lower()


def _validated(username: str | None, email: str | None) -> tuple[str | None, str | None]:
    issues: list[FieldIssue] = []
    if username is not None:
        try:
            check_username(username)
        except ValueError as exc:
            issues.append(FieldIssue("username", str(exc)))
    if email is not None:
        try:
            email = normalize_email(email)
        except ValueError as exc:
            issues.append(FieldIssue("email", str(exc)))
    if issues:
        raise InvalidInput("invalid input", fields=issues)
    return username, email


def _ensure_unique(
    session: Session, *, username: str | None, email: str | None, exclude_id: int | None
) -> None:
    issues: list[FieldIssue] = []
    if username is not None:
        query = select(User.id).where(func.lower(User.username) == username.lower())
        if exclude_id is not None:
            query = query.where(User.id != exclude_id)
        if session.scalar(query) is not None:
            issues.append(FieldIssue("username", "this username is taken"))
    if email is not None:
        query = select(User.id).where(User.email == email)
        if exclude_id is not None:
            query = query.where(User.id != exclude_id)
        if session.scalar(query) is not None:
            issues.append(FieldIssue("email", "this email is already registered"))
    if issues:
        code = "username_taken" if issues[0].field == "username" else "email_taken"
        raise Conflict(issues[0].message, code=code, fields=issues)


def get_user(session: Session, *, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found", code="user_not_found")
    return user


def find_by_login(session: Session, *, username_or_email: str) -> User | None:
    """The user whose username (any case) or email matches."""
    value = username_or_email.strip().lower()
    return session.scalar(select(User).where(or_(func.lower(User.username) == value, User.email == value)))


def create_user(
    session: Session,
    *,
    username: str,
    email: str,
    password: str,
    role: Role = Role.researcher,
    actor: User | None = None,
    ip: str | None = None,
    action: AuditAction = AuditAction.user_created,
) -> User:
    """Create and commit a user after checking every rule; audits `action`."""
    _, normalized_email = _validated(username, email)
    assert normalized_email is not None
    passwords.validate_password(password)
    _ensure_unique(session, username=username, email=normalized_email, exclude_id=None)
    user = User(
        username=username,
        email=normalized_email,
        password_hash=passwords.hash_password(password),
        role=role.value,
        disabled=False,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        action=action,
        actor=actor if actor is not None else (user if action is AuditAction.user_registered else None),
        target_type="user",
        target_id=user.id,
        ip=ip,
        details={"username": user.username, "role": user.role},
    )
    session.commit()
    return user


def update_profile(
    session: Session, *, user: User, username: str | None = None, email: str | None = None, ip: str | None
) -> User:
    """A user edits their own username and/or email."""
    username, email = _validated(username, email)
    if username is not None and username == user.username:
        username = None
    if email is not None and email == user.email:
        email = None
    _ensure_unique(session, username=username, email=email, exclude_id=user.id)
    changed: dict[str, dict[str, str]] = {}
    if username is not None:
        changed["username"] = {"from": user.username, "to": username}
        user.username = username
    if email is not None:
        changed["email"] = {"from": user.email, "to": email}
        user.email = email
    if changed:
        audit.record(
            session,
            action=AuditAction.profile_updated,
            actor=user,
            target_type="user",
            target_id=user.id,
            ip=ip,
            details=changed,
        )
        session.commit()
    return user


def change_password(
    session: Session,
    *,
    user: User,
    current_password: str,
    new_password: str,
    keep_family: str | None,
    ip: str | None,
) -> None:
    """Change one's own password; every other session of the user is logged out."""
    if not passwords.verify_password(user.password_hash, current_password):
        raise InvalidInput(
            "current password is wrong",
            code="wrong_password",
            fields=[FieldIssue("current_password", "current password is wrong")],
        )
    passwords.validate_password(new_password, field="new_password")
    user.password_hash = passwords.hash_password(new_password)
    revoke_user_sessions(session, user_id=user.id, keep_family=keep_family)
    audit.record(
        session, action=AuditAction.password_changed, actor=user, target_type="user", target_id=user.id, ip=ip
    )
    session.commit()


# -- admin ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserPage:
    items: list[User]
    total: int


def list_users(
    session: Session,
    *,
    q: str | None = None,
    role: Role | None = None,
    disabled: bool | None = None,
    offset: int = 0,
    limit: int = 20,
) -> UserPage:
    """Search by a substring of username or email (case-insensitive), oldest account first."""
    query = select(User)
    if q:
        # Escape LIKE wildcards: '_' is common in usernames and must match literally.
        needle = q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{needle}%"
        query = query.where(
            or_(
                func.lower(User.username).like(pattern, escape="\\"),
                User.email.like(pattern, escape="\\"),
            )
        )
    if role is not None:
        query = query.where(User.role == role.value)
    if disabled is not None:
        query = query.where(User.disabled.is_(disabled))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(User.id).offset(offset).limit(limit)).all()
    return UserPage(items=list(rows), total=total)


def _active_admin_count(session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.admin.value, User.disabled.is_(False))
        )
        or 0
    )


def _ensure_not_last_admin(session: Session, target: User) -> None:
    if target.role == Role.admin.value and not target.disabled and _active_admin_count(session) <= 1:
        raise Conflict("the last active admin cannot be removed, demoted or disabled", code="last_admin")


def admin_update_user(
    session: Session,
    *,
    actor: User,
    user_id: int,
    role: Role | None = None,
    disabled: bool | None = None,
    email: str | None = None,
    ip: str | None,
) -> User:
    """An admin changes a user's role, disabled flag or email; each change is audited."""
    target = get_user(session, user_id=user_id)
    demoting = role is not None and role.value != target.role and target.role == Role.admin.value
    disabling = disabled is True and not target.disabled
    if demoting or disabling:
        _ensure_not_last_admin(session, target)
    if target.id == actor.id and ((role is not None and role.value != target.role) or disabling):
        raise Conflict("you cannot change your own role or disable yourself", code="cannot_modify_self")
    if email is not None:
        _, email = _validated(None, email)
        if email == target.email:
            email = None
        _ensure_unique(session, username=None, email=email, exclude_id=target.id)

    def note(action: AuditAction, details: dict[str, object]) -> None:
        audit.record(
            session,
            action=action,
            actor=actor,
            target_type="user",
            target_id=target.id,
            ip=ip,
            details=details,
        )

    if role is not None and role.value != target.role:
        note(AuditAction.role_changed, {"username": target.username, "from": target.role, "to": role.value})
        target.role = role.value
    if disabled is not None and disabled != target.disabled:
        target.disabled = disabled
        if disabled:
            revoke_user_sessions(session, user_id=target.id, keep_family=None)
        note(
            AuditAction.user_disabled if disabled else AuditAction.user_enabled, {"username": target.username}
        )
    if email is not None:
        note(
            AuditAction.user_updated,
            {"username": target.username, "email": {"from": target.email, "to": email}},
        )
        target.email = email
    session.commit()
    return target


def delete_user(session: Session, *, actor: User, user_id: int, ip: str | None) -> None:
    """Delete a user, their sessions and API keys (cascade). Never oneself, never the last admin."""
    target = get_user(session, user_id=user_id)
    _ensure_not_last_admin(session, target)
    if target.id == actor.id:
        raise Conflict("you cannot delete your own account", code="cannot_modify_self")
    audit.record(
        session,
        action=AuditAction.user_deleted,
        actor=actor,
        target_type="user",
        target_id=target.id,
        ip=ip,
        details={"username": target.username, "email": target.email, "role": target.role},
    )
    session.delete(target)
    session.commit()


def reset_password(
    session: Session, *, actor: User, user_id: int, new_password: str | None, ip: str | None
) -> str | None:
    """Set `new_password`, or a random one which is returned (the only time it is visible).

    The user's sessions are revoked so a stolen session does not outlive the reset.
    """
    target = get_user(session, user_id=user_id)
    generated = new_password is None
    password = passwords.generate_password() if new_password is None else new_password
    passwords.validate_password(password)
    target.password_hash = passwords.hash_password(password)
    revoke_user_sessions(session, user_id=target.id, keep_family=None)
    audit.record(
        session,
        action=AuditAction.password_reset,
        actor=actor,
        target_type="user",
        target_id=target.id,
        ip=ip,
        details={"username": target.username, "generated": generated},
    )
    session.commit()
    return password if generated else None


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
