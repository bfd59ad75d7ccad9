"""STUB (usage helper replaces this): per scheduler tick, bring `job_usage` up to date."""

from __future__ import annotations

from sqlalchemy.orm import Session

from loraforge.settings import Settings


def sync(session: Session, *, settings: Settings) -> None:
    return None
