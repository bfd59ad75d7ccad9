"""The job state machine, as a table: every (from, to) pair is either allowed or refused."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from loraforge.db.models import Job, JobStatus, User
from loraforge.db.session import Database
from loraforge.services.jobs import recovery
from loraforge.services.jobs.states import ALLOWED, InvalidTransition, StaleJobState, check, transition
from loraforge.settings import Settings

S = JobStatus
EXPECTED_ALLOWED = {
    (S.draft, S.queued),
    (S.queued, S.starting),
    (S.queued, S.cancelled),
    (S.starting, S.running),
    (S.starting, S.stopping),
    (S.starting, S.succeeded),
    (S.starting, S.failed),
    (S.starting, S.cancelled),
    (S.running, S.stopping),
    (S.running, S.succeeded),
    (S.running, S.failed),
    (S.running, S.cancelled),
    (S.stopping, S.succeeded),
    (S.stopping, S.failed),
    (S.stopping, S.cancelled),
    # resume: the same job goes back to the queue
    (S.failed, S.queued),
    (S.cancelled, S.queued),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_transition_table(current: JobStatus, target: JobStatus) -> None:
    if (current, target) in EXPECTED_ALLOWED:
        check(current, target)
    else:
        with pytest.raises(InvalidTransition):
            check(current, target)


def test_the_table_names_every_status_and_final_states_only_resume() -> None:
    assert set(ALLOWED) == set(S)
    assert ALLOWED[S.succeeded] == frozenset()
    for final in (S.failed, S.cancelled):
        assert ALLOWED[final] == frozenset({S.queued})


def _job(database: Database) -> int:
    with database.session() as session:
        user = User(username="u", email="u@example.com", password_hash="x", role="researcher")
        session.add(user)
        session.flush()
        job = Job(owner_id=user.id, name="j", status="draft", spec={}, executor="local")
        session.add(job)
        session.commit()
        return job.id


def test_transition_sets_timestamps_and_refuses_a_stale_status(database_url: str) -> None:
    database = Database(database_url)
    try:
        job_id = _job(database)
        with database.session() as first, database.session() as second:
            a = first.get(Job, job_id)
            b = second.get(Job, job_id)
            assert a is not None and b is not None
            transition(first, a, S.queued)
            first.commit()
            assert a.queued_at is not None
            # `b` still believes the job is a draft: the conditional update finds nothing to change.
            with pytest.raises(StaleJobState):
                transition(second, b, S.queued)
        with database.session() as session:
            stored = session.scalars(select(Job)).one()
            assert stored.status == "queued" and stored.queued_at is not None
    finally:
        database.dispose()


@pytest.mark.parametrize(
    ("status", "error", "final"),
    [
        (S.stopping, None, "cancelled"),  # stopped before the engine could checkpoint: the stop worked
        (S.running, None, "failed"),  # killed without anyone asking: a failure to explain
        (S.stopping, {"code": "nan_loss", "message": "loss is NaN"}, "failed"),  # the engine's own error wins
    ],
)
def test_a_dead_process_without_a_final_event(
    database_url: str, tmp_path, status: JobStatus, error: dict | None, final: str
) -> None:
    database = Database(database_url)
    try:
        job_id = _job(database)
        with database.session() as session:
            job = session.get(Job, job_id)
            assert job is not None
            for step in (S.queued, S.starting, S.running, status):
                if job.status != step:
                    transition(session, job, step)
            recovery.fail_dead(session, Settings(data_dir=tmp_path), job, -15, error)
            session.commit()
        with database.session() as session:
            stored = session.get(Job, job_id)
            assert stored is not None and stored.status == final and stored.exit_code == -15
            assert (stored.error is None) == (final == "cancelled")
    finally:
        database.dispose()
