"""The metric file: appended from job_events, rebuilt when missing or torn, read and downsampled with numpy
exactly like the reference (`services.jobs.reads.downsample` over the events' JSON)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobEvent, User
from loraforge.db.session import Database
from loraforge.services.jobs import metric_store, reads
from loraforge.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    database = Database(settings.sqlalchemy_url)
    with database.session() as session:
        yield session
    database.dispose()


def _job(session: Session) -> int:
    user = User(username="u", email="u@example.com", password_hash="x")
    session.add(user)
    session.flush()
    job = Job(owner_id=user.id, name="j", spec={})
    session.add(job)
    session.commit()
    return job.id


def _store(session: Session, job_id: int, events: list[tuple[int, str, dict[str, Any]]]) -> None:
    session.add_all(
        JobEvent(job_id=job_id, seq=seq, type=kind, ts=0.0, data=data) for seq, kind, data in events
    )
    session.commit()


def _metric(step: int, loss: float | None) -> dict[str, Any]:
    return {"step": step, "loss": loss, "lr": 1e-4, "progress": step / 100, "epoch": None}


def test_same_points_as_the_reference_and_rebuilt_when_missing_or_torn(settings: Settings, session: Session):
    job_id = _job(session)
    rng = random.Random(7)
    events: list[tuple[int, str, dict[str, Any]]] = [(1, "status", {"status": "training"})]
    for step in range(1, 3001):
        loss = None if step % 97 == 0 else rng.random() * 3
        events.append((len(events) + 1, "metric", _metric(step, loss)))
        if step % 500 == 0:
            events.append((len(events) + 1, "eval", {"step": step, "eval_loss": 1.5}))
    _store(session, job_id, events)

    for target in (3, 10, 101, 2000, 5000):
        got = metric_store.read(settings, session, job_id, target)
        want = reads.metrics_from_events(session, job_id=job_id, target=target)
        assert got == want, target
    assert got["total"] == 3000 and len(got["eval"]) == 6

    path = metric_store.path_of(settings, job_id)
    assert path.stat().st_size == 3006 * 8 * len(metric_store.COLUMNS)  # each event once, however often read
    with path.open("ab") as fh:
        fh.write(b"\x01\x02\x03")  # a writer died mid-row
    assert metric_store.read(settings, session, job_id, 50) == reads.metrics_from_events(
        session, job_id=job_id, target=50
    )
    path.unlink()
    assert metric_store.read(settings, session, job_id, 50)["total"] == 3000
    metric_store.delete(settings, job_id)
    assert not path.exists()


def test_new_events_are_appended_and_a_resumed_runs_repeated_steps_win(settings: Settings, session: Session):
    job_id = _job(session)
    _store(session, job_id, [(i, "metric", _metric(i, 10.0 - i)) for i in range(1, 6)])
    stored = [{"type": "metric"}]
    metric_store.on_events_stored(settings, session, job_id, stored)
    assert metric_store.read(settings, session, job_id, 100)["total"] == 5
    # Resumed from checkpoint-3: steps 4 and 5 come again with later seqs, then 6.
    _store(session, job_id, [(6, "status", {"status": "training"}), (7, "metric", _metric(4, 0.4))])
    _store(session, job_id, [(8, "metric", _metric(5, 0.5)), (9, "metric", _metric(6, 0.6))])
    metric_store.on_events_stored(settings, session, job_id, stored)
    points = metric_store.read(settings, session, job_id, 100)["points"]
    assert [(p["step"], p["loss"]) for p in points] == [
        (1, 9.0),
        (2, 8.0),
        (3, 7.0),
        (4, 0.4),
        (5, 0.5),
        (6, 0.6),
    ]
    assert all(p["epoch"] is None and p["lr"] == 1e-4 for p in points)


def test_vectorised_downsampling_equals_the_reference() -> None:
    rng = np.random.default_rng(3)
    for n, target in [(2, 3), (3, 3), (4, 3), (100, 3), (1000, 50), (12345, 2000), (5001, 7), (999, 998)]:
        loss = rng.random(n)
        loss[rng.integers(0, n, n // 10)] = np.nan
        loss[: n // 20] = np.nan  # a run of missing values fills whole buckets
        points = [{"step": i, "loss": None if math.isnan(v) else float(v)} for i, v in enumerate(loss)]
        want = [p["step"] for p in reads.downsample(points, target)]
        assert metric_store.downsample_indices(loss, target).tolist() == want, (n, target)
