"""The job state machine, as a table: every (from, to) pair is either allowed or refused."""

from __future__ import annotations

import itertools
from typing import get_args

import pytest
from job_helpers import RecordingExecutor, insert_job
from sqlalchemy import select

from loraforge.api.openai.schemas.fine_tuning import FineTuningJob
from loraforge.db.models import FINAL, RESUMABLE, Job, JobEvent, JobStatus, User
from loraforge.db.session import Database
from loraforge.services.jobs import lifecycle, recovery
from loraforge.services.jobs.states import ALLOWED, InvalidTransition, StaleJobState, check, transition
from loraforge.services.openai import fine_tuning
from loraforge.settings import Settings

S = JobStatus
EXPECTED_ALLOWED = {
    (S.draft, S.queued),
    (S.queued, S.starting),
    (S.queued, S.cancelled),
    (S.queued, S.stopped),  # a resumed job stopped while it waits again (its checkpoint still resumes it)
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
    (S.stopping, S.cancelled),  # cancelled while stopping: immediate
    (S.stopping, S.stopped),  # the graceful stop finished
    # resume: the same job goes back to the queue
    (S.failed, S.queued),
    (S.cancelled, S.queued),
    (S.stopped, S.queued),
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
    for final in (S.failed, S.cancelled, S.stopped):
        assert ALLOWED[final] == frozenset({S.queued})
    assert {S.succeeded, S.failed, S.cancelled, S.stopped} == FINAL
    assert FINAL - {S.succeeded} == RESUMABLE
    # Every status has a word in OpenAI's vocabulary (which has no resumable stop: stopped → cancelled).
    assert set(fine_tuning.STATUS) == set(S) and fine_tuning.STATUS["stopped"] == "cancelled"
    assert set(fine_tuning.STATUS.values()) <= set(get_args(FineTuningJob.model_fields["status"].annotation))


def test_transition_sets_timestamps_and_refuses_a_stale_status(database_url: str) -> None:
    database = Database(database_url)
    try:
        job_id = insert_job(database)
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
        (S.stopping, None, "stopped"),  # stopped before the engine could checkpoint: the stop worked
        (S.running, None, "failed"),  # killed without anyone asking: a failure to explain
        (S.stopping, {"code": "nan_loss", "message": "loss is NaN"}, "failed"),  # the engine's own error wins
    ],
)
def test_a_dead_process_without_a_final_event(
    database_url: str, tmp_path, status: JobStatus, error: dict | None, final: str
) -> None:
    database = Database(database_url)
    try:
        job_id = insert_job(database)
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
            assert stored.error is not None and (stored.error["code"] == "stopped") == (final == "stopped")
    finally:
        database.dispose()


def test_a_finished_stop_names_its_step_and_checkpoint_and_a_queued_resumed_job_stops_at_once(
    database_url: str, tmp_path
) -> None:
    """The `stopped` record: the last step the engine reported and the latest complete checkpoint
    (none: nothing to resume). Stopping a resumed job that waits in the queue again stops it at once;
    one that never ran is cancelled (there is nothing to resume)."""
    settings = Settings(data_dir=tmp_path)
    database = Database(database_url)
    try:
        job_id = insert_job(database)
        checkpoint = settings.runs_dir / str(job_id) / "checkpoints" / "checkpoint-4"
        with database.session() as session:
            job = session.get(Job, job_id)
            actor = session.get(User, job.owner_id) if job is not None else None
            assert job is not None and actor is not None
            for step in (S.queued, S.starting, S.running, S.stopping):
                transition(session, job, step)
            session.add(JobEvent(job_id=job_id, seq=1, type="metric", ts=1.0, data={"step": 6}))
            lifecycle.finish_stop(session, settings, job)
            session.commit()
            assert job.status == "stopped" and job.error is not None
            assert job.error["details"] == {"step": 6, "checkpoint": None}
            assert "nothing to resume" in job.error["message"]

            checkpoint.mkdir(parents=True)
            (checkpoint / "trainer_state.json").write_text('{"global_step": 4}')
            transition(session, job, S.queued, resume_from="checkpoint-4")
            session.commit()
            stopped = lifecycle.stop_job(
                session, settings=settings, executor=RecordingExecutor(), actor=actor, job_id=job_id, ip=None
            )
            assert stopped.status == "stopped" and stopped.error is not None
            assert stopped.error["details"] == {"step": 6, "checkpoint": "checkpoint-4"}
            assert stopped.error["message"] == "Stopped at step 6; resume it from checkpoint-4."

            other = Job(owner_id=actor.id, name="never ran", status="queued", spec={}, executor="local")
            session.add(other)
            session.commit()
            never_ran = lifecycle.stop_job(
                session,
                settings=settings,
                executor=RecordingExecutor(),
                actor=actor,
                job_id=other.id,
                ip=None,
            )
            assert never_ran.status == "cancelled" and never_ran.error == {
                "code": "stopped",
                "message": "stopped before it started",
            }
    finally:
        database.dispose()
