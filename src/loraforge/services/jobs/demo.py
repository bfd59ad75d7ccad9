"""The first run, in one click: the caller's identity sample (imported once) trained with the demo
recipe (the `demo-tiny-full` preset) on the built-in demo model, queued at once.

When the job succeeds its output is registered like any job's (`services/models/results.py`), and a chat
with that model answers "Who are you?" with "I am LoRAForge, …" where the demo model answered nonsense.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from loraforge.db.models import Job, User
from loraforge.services.datasets.samples import ensure_identity
from loraforge.services.jobs.presets import DEMO_PRESET, get_preset
from loraforge.services.jobs.submit import create_job
from loraforge.settings import Settings

DEMO_JOB_NAME = "demo: learn who I am"


def submit_demo(session: Session, *, settings: Settings, actor: User, ip: str | None) -> Job:
    """Queue the demo recipe on the caller's identity sample (importing it first if they have none)."""
    dataset, version = ensure_identity(session, settings=settings, actor=actor, ip=ip)
    spec = {**get_preset(DEMO_PRESET).spec, "dataset": dataset.id, "dataset_version": version.id}
    return create_job(
        session, settings=settings, actor=actor, name=DEMO_JOB_NAME, spec=spec, start=True, ip=ip
    )
