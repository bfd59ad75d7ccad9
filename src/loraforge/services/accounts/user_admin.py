"""Admins manage users: search, role/disabled/email changes, deletion and password resets. The last
active admin can never be demoted, disabled or deleted, and nobody changes their own role this way."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from loraforge.db.models import Role, User
from loraforge.errors import Conflict
from loraforge.services.accounts import api_keys, passwords
from loraforge.services.accounts.sessions import revoke_user_sessions
from loraforge.services.accounts.users import audit_user, ensure_unique, get_user, validate_identity
from loraforge.services.platform.audit import AuditAction


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
        _, email = validate_identity(None, email)
        if email == target.email:
            email = None
        ensure_unique(session, username=None, email=email, exclude_id=target.id)

    def note(action: AuditAction, details: dict[str, object]) -> None:
        audit_user(session, action=action, actor=actor, target=target, ip=ip, details=details)

    if role is not None and role.value != target.role:
        note(AuditAction.role_changed, {"username": target.username, "from": target.role, "to": role.value})
        target.role = role.value
    if disabled is not None and disabled != target.disabled:
        target.disabled = disabled
        if disabled:
            revoke_user_sessions(session, user_id=target.id)
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
    audit_user(
        session,
        action=AuditAction.user_deleted,
        actor=actor,
        target=target,
        ip=ip,
        details={"username": target.username, "email": target.email, "role": target.role},
    )
    session.delete(target)
    session.commit()


def reset_password(
    session: Session,
    *,
    actor: User,
    user_id: int,
    new_password: str | None,
    revoke_api_keys: bool,
    ip: str | None,
) -> str | None:
    """Set `new_password`, or a random one which is returned (the only time it is visible).

    The user's sessions are revoked so a stolen session does not outlive the reset, and with
    `revoke_api_keys` their API keys as well.
    """
    target = get_user(session, user_id=user_id)
    generated = new_password is None
    password = passwords.generate_password() if new_password is None else new_password
    passwords.validate_password(password, user_inputs=(target.username, target.email))
    target.password_hash = passwords.hash_password(password)
    revoke_user_sessions(session, user_id=target.id)
    revoked = api_keys.revoke_all_keys(session, user_id=target.id) if revoke_api_keys else 0
    audit_user(
        session,
        action=AuditAction.password_reset,
        actor=actor,
        target=target,
        ip=ip,
        details={"username": target.username, "generated": generated, "api_keys_revoked": revoked},
    )
    session.commit()
    return password if generated else None
