"""Jobs whose process is gone without a final event: failed with a diagnosis, so no job stays
`running` without a process (after a crash, an OOM kill, or a server restart that finds the PID dead).
A job the user asked to stop is `stopped` instead (`lifecycle.finish_stop`): a stop that lands before
the engine can checkpoint (it is still importing its libraries) kills it by the signal, and the stop
timeout kills an engine that took too long; either way the stop did what the user asked for, and an
earlier checkpoint, if any, still resumes the job.

The diagnosis is the exit code's (`engine.failures.classify_exit`), refined by the engine's own
error event when it wrote one, with the last log lines attached.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobStatus
from loraforge.engine.failures import classify_exit
from loraforge.services.jobs.lifecycle import finish_stop
from loraforge.services.jobs.outputs import log_tail
from loraforge.services.jobs.states import transition
from loraforge.settings import Settings


def fail_dead(
    session: Session, settings: Settings, job: Job, returncode: int | None, error: dict[str, Any] | None
) -> None:
    """Fail a job whose process exited (or vanished: `returncode` None) without reporting a result."""
    if job.status == JobStatus.stopping and error is None:
        finish_stop(session, settings, job, exit_code=returncode)
        return
    last_lines = log_tail(settings, job, 20)
    if returncode is None:
        diagnosis: dict[str, Any] = {
            "code": "process_lost",
            "message": "The training process is gone and left no final event (exit code unknown).",
            "suggestion": None,
            "details": {},
        }
    else:
        failure = classify_exit(returncode)
        diagnosis = (
            failure.event_data()
            if failure is not None
            else {
                "code": "no_final_event",
                "message": "The training process exited without reporting a result.",
                "suggestion": None,
                "details": {"returncode": returncode},
            }
        )
    if error is not None:  # the engine's own diagnosis is the better one
        diagnosis = {**diagnosis, **{k: v for k, v in error.items() if v is not None}}
    diagnosis["last_log_lines"] = last_lines
    transition(session, job, JobStatus.failed, exit_code=returncode, error=diagnosis)


def fail_interrupted_launch(session: Session, job: Job) -> None:
    """Fail a `starting` job that has no process: launching runs inside a tick under the tick lock, so
    such a job was left by a server that stopped mid-launch."""
    transition(session, job, JobStatus.failed, error={
        "code": "launch_interrupted", "message": "the server stopped while launching this job",
        "suggestion": "Start the job again (clone it).", "details": {},
    })  # fmt: skip
