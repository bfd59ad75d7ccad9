"""Settings operators change at run time (alert thresholds, prices), stored in `ops_settings` as
key → JSON value. A key never set falls back to the caller's default (the `LORAFORGE_*` setting), so
an operator's change survives restarts and every server replica reads the same value."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import OpsSetting, User


def read_all(session: Session, prefix: str) -> dict[str, Any]:
    """Every stored value whose key starts with `prefix`, keyed without it."""
    rows = session.scalars(select(OpsSetting).where(OpsSetting.key.startswith(prefix, autoescape=True)))
    return {row.key[len(prefix) :]: row.value for row in rows}


def get(session: Session, key: str, default: Any) -> Any:
    row = session.get(OpsSetting, key)
    return default if row is None else row.value


def put(session: Session, key: str, value: Any, *, actor: User | None) -> None:
    """Store `value` (None removes the key: back to the default). The caller audits and commits."""
    row = session.get(OpsSetting, key)
    if value is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        session.add(OpsSetting(key=key, value=value, updated_by=actor.id if actor else None))
    else:
        row.value = value
        row.updated_at = utcnow()
        row.updated_by = actor.id if actor else None
