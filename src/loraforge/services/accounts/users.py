"""Users: the username/email rules, creation, and a user's own profile and password changes."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from loraforge.db.models import Role, User
from loraforge.errors import Conflict, FieldIssue, InvalidInput, NotFound
from loraforge.services.accounts import api_keys, passwords
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


def validate_identity(username: str | None, email: str | None) -> tuple[str | None, str | None]:
    """The username as given and the normalised email; InvalidInput naming every bad field."""
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


def ensure_unique(
    session: Session, *, username: str | None, email: str | None, exclude_id: int | None
) -> None:
    """Conflict when another account (not `exclude_id`) has the username (any case) or the email."""
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


def audit_user(
    session: Session,
    *,
    action: AuditAction,
    actor: User | None,
    target: User,
    ip: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit `action` on the account `target` (every change to an account is recorded this way)."""
    audit.record(
        session, action=action, actor=actor, target_type="user", target_id=target.id, ip=ip, details=details
    )


def get_user(session: Session, *, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found", code="user_not_found")
    return user


def usernames(session: Session, user_ids: Collection[int]) -> dict[int, str]:
    """`{id: username}` for the given ids, in one query (lists show owners by name, not by id)."""
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.username).where(User.id.in_(set(user_ids))))
    return {user_id: name for user_id, name in rows}


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
    _, normalized_email = validate_identity(username, email)
    assert normalized_email is not None
    passwords.validate_password(password, user_inputs=(username, normalized_email))
    ensure_unique(session, username=username, email=normalized_email, exclude_id=None)
    user = User(
        username=username,
        email=normalized_email,
        password_hash=passwords.hash_password(password),
        role=role.value,
        disabled=False,
    )
    session.add(user)
    session.flush()
    audit_user(
        session,
        action=action,
        actor=actor if actor is not None else (user if action is AuditAction.user_registered else None),
        target=user,
        ip=ip,
        details={"username": user.username, "role": user.role},
    )
    session.commit()
    return user


def update_profile(
    session: Session, *, user: User, username: str | None = None, email: str | None = None, ip: str | None
) -> User:
    """A user edits their own username and/or email."""
    username, email = validate_identity(username, email)
    if username is not None and username == user.username:
        username = None
    if email is not None and email == user.email:
        email = None
    ensure_unique(session, username=username, email=email, exclude_id=user.id)
    changed: dict[str, dict[str, str]] = {}
    if username is not None:
        changed["username"] = {"from": user.username, "to": username}
        user.username = username
    if email is not None:
        changed["email"] = {"from": user.email, "to": email}
        user.email = email
    if changed:
        audit_user(
            session, action=AuditAction.profile_updated, actor=user, target=user, ip=ip, details=changed
        )
        session.commit()
    return user


def change_password(
    session: Session,
    *,
    user: User,
    current_password: str,
    new_password: str,
    keep_families: Collection[str],
    revoke_api_keys: bool,
    ip: str | None,
) -> None:
    """Change one's own password; every other session of the user is logged out.

    The caller's own sessions (`keep_families`) stay. API keys survive unless `revoke_api_keys`: a
    routine change should not break the user's scripts, but after a leak the keys must go too.
    """
    if not passwords.verify_password(user.password_hash, current_password):
        raise InvalidInput(
            "current password is wrong",
            code="wrong_password",
            fields=[FieldIssue("current_password", "current password is wrong")],
        )
    passwords.validate_password(new_password, field="new_password", user_inputs=(user.username, user.email))
    user.password_hash = passwords.hash_password(new_password)
    revoke_user_sessions(session, user_id=user.id, keep=keep_families)
    revoked = api_keys.revoke_all_keys(session, user_id=user.id) if revoke_api_keys else 0
    audit_user(
        session,
        action=AuditAction.password_changed,
        actor=user,
        target=user,
        ip=ip,
        details={"api_keys_revoked": revoked},
    )
    session.commit()
