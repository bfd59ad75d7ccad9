"""The first admin. There is no default admin/admin: see `ensure_first_admin`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.models import Role, User
from loraforge.services.accounts import passwords, users
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings


@dataclass(frozen=True)
class BootstrapResult:
    username: str
    generated_password: str | None


def ensure_first_admin(session: Session, *, settings: Settings) -> BootstrapResult | None:
    """Create the first admin if the settings ask for one or the database has no user at all.

    - LORAFORGE_ADMIN_PASSWORD set and no user named LORAFORGE_ADMIN_USERNAME: create that admin
      (an existing user is left alone: restarting never resets a password).
    - Otherwise, no user at all: create the admin with a random password, returned so the caller
      can print it once.
    """
    username = settings.admin_username
    if settings.admin_password is not None:
        if users.find_by_login(session, username_or_email=username) is not None:
            return None
        password = settings.admin_password.get_secret_value()
        generated = None
    else:
        if (session.scalar(select(func.count()).select_from(User)) or 0) > 0:
            return None
        password = passwords.generate_password()
        generated = password
    users.create_user(
        session,
        username=username,
        email=settings.admin_email,
        password=password,
        role=Role.admin,
        action=AuditAction.user_created,
    )
    return BootstrapResult(username=username, generated_password=generated)
