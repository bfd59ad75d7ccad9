"""STUB (drain & migration helper replaces this): per scheduler tick, re-queue jobs whose stop was a
migration (`jobs.requeue_on_stop`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from loraforge.settings import Settings


def after_tick(session: Session, *, settings: Settings) -> None:
    return None
