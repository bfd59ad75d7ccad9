"""Watching active jobs: their new engine events stored in `job_events`, their status moved on the
engine's status events, their model registered in the transaction that marks them succeeded, jobs
without a live process failed (`services.jobs.recovery`), and what was committed fanned out to live
subscribers (`services.platform.event_hub`).

Two callers: the scheduler's full tick (`check_process=True`: liveness, launch leftovers and the
stop timeout too) and the event pump between ticks (events only).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ACTIVE, Job, JobEvent, JobStatus
from loraforge.executors.base import Executor, ProcessRef, ProcessState
from loraforge.services.jobs import lifecycle, merge, metric_store, reads, recovery
from loraforge.services.jobs.access import process_ref
from loraforge.services.jobs.states import StaleJobState, transition
from loraforge.services.jobs.tailing import EventTail
from loraforge.services.models import results
from loraforge.services.platform.event_hub import EventHub, job_channel
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.scheduler")
_MAX_EVENTS_PER_TICK = 5000
# The engine's status once it works: training, an evaluation's "evaluating", an export's "exporting".
_WORKING = frozenset({"training", "evaluating", "exporting"})
# Events that say how far training is: a metric at each log step, a progress event after every step.
_PROGRESS_KINDS = frozenset({"metric", "progress"})
_ENGINE_FINAL = {
    "succeeded": JobStatus.succeeded,
    "failed": JobStatus.failed,
    "cancelled": JobStatus.cancelled,
}


class JobWatcher:
    def __init__(self, settings: Settings, executor: Executor, hub: EventHub, tail: EventTail) -> None:
        self.settings = settings
        self.executor = executor
        self.hub = hub
        self.tail = tail
        # Finished jobs whose process is still exiting, by the ref's key (Ray refs all have pid 0).
        self._exiting: dict[str | int, ProcessRef] = {}
        # Jobs whose model registration failed once: finalised without it (logged) from then on.
        self._unregistrable: set[int] = set()

    def watch(self, session: Session) -> None:
        """Ingest events of, and check the process of, every starting / running / stopping job."""
        for key, ref in list(self._exiting.items()):
            if not self.executor.state(ref).alive:
                self._exiting.pop(key, None)
        jobs = session.scalars(select(Job).where(Job.status.in_([s.value for s in ACTIVE])).order_by(Job.id))
        self.watch_jobs(session, list(jobs), check_process=True)

    def watch_jobs(self, session: Session, jobs: list[Job], *, check_process: bool) -> None:
        for job in jobs:
            try:
                self._watch_one(session, job, check_process=check_process)
            except StaleJobState:
                self.tail.forget(job.id)  # what this tick read was rolled back
                continue  # a request moved it meanwhile (cancel); it is no longer ours to move
            except Exception:
                session.rollback()
                self.tail.forget(job.id)
                logger.exception("watching job %s failed", job.id)

    def _watch_one(self, session: Session, job: Job, *, check_process: bool = True) -> None:
        """Store the job's new events, move its status, and publish both after the commit.

        With `check_process=False` (the event pump) only the events are handled; liveness, launch
        leftovers and the stop timeout wait for the next full tick.
        """
        ref = process_ref(job)
        # Liveness first, events second: whatever the process wrote before it died is read below.
        state = self.executor.state(ref) if ref is not None and check_process else None
        status_before = job.status
        events = self.tail.read_new(job)
        stored, final, error = self._store(session, job, events)
        if stored is None:
            return
        if final is not None:
            self._finish(session, job, final, error, ref, state)
        elif not check_process:
            pass
        elif ref is None:
            recovery.fail_interrupted_launch(session, job)
        elif state is not None and not state.alive:
            recovery.fail_dead(session, self.settings, job, state.returncode, error)
            self.tail.forget(job.id)
        elif job.status == JobStatus.stopping.value and job.stop_requested_at is not None:
            waited = utcnow() - job.stop_requested_at
            if waited > timedelta(seconds=self.settings.job_stop_timeout_seconds):
                self.executor.cancel(ref)
        session.commit()
        self._publish(job, stored, status_changed=job.status != status_before)

    def _store(
        self, session: Session, job: Job, events: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]] | None, JobStatus | None, dict[str, Any] | None]:
        """Add the events to the session up to the engine's final status event; returns the stored
        events (None when another server stored them first), that final status, and the job's error."""
        final: JobStatus | None = None
        error: dict[str, Any] | None = job.error
        seen: set[int] = set()
        stored: list[dict[str, Any]] = []
        for event in events[:_MAX_EVENTS_PER_TICK]:
            seq = int(event.pop("seq"))
            if seq in seen:
                continue
            seen.add(seq)
            kind = str(event.pop("type"))
            ts = float(event.pop("ts", 0.0) or 0.0)
            session.add(JobEvent(job_id=job.id, seq=seq, type=kind, ts=ts, data=event))
            stored.append({"seq": seq, "type": kind, "ts": ts, **event})
            job.last_event_seq = max(job.last_event_seq, seq)
            if kind in _PROGRESS_KINDS and isinstance(event.get("progress"), int | float):
                job.progress = float(event["progress"])
            elif kind == "error":
                error = {k: event.get(k) for k in ("code", "message", "suggestion", "details")}
                job.error = error
            elif kind == "status":
                status = event.get("status")
                if status in _WORKING and job.status == JobStatus.starting.value:
                    transition(session, job, JobStatus.running)
                elif status in _ENGINE_FINAL:
                    final = _ENGINE_FINAL[status]
                    break
        if len(events) > _MAX_EVENTS_PER_TICK or (final is None and len(seen) < len(events)):
            self.tail.forget(job.id)  # re-read the rest next time (seq filter skips stored ones)
        try:
            session.flush()
        except IntegrityError:  # another server stored them first
            session.rollback()
            self.tail.forget(job.id)
            return None, None, None
        metric_store.on_events_stored(self.settings, session, job.id, stored)
        return stored, final, error

    def _finish(
        self,
        session: Session,
        job: Job,
        target: JobStatus,
        error: dict[str, Any] | None,
        ref: ProcessRef | None,
        state: ProcessState | None,
    ) -> None:
        """The engine reported a final status: move the job there (registering its model on success)."""
        if target is JobStatus.succeeded:
            job.progress = 1.0
        if target is JobStatus.cancelled and job.status == JobStatus.stopping.value:
            lifecycle.finish_stop(session, self.settings, job)  # the stop the user asked for: resumable
        else:
            transition(session, job, target, error=error if target is not JobStatus.succeeded else None)
        if target is JobStatus.succeeded and job.id not in self._unregistrable:
            # Same transaction: the model is listed the moment the job reads `succeeded`. If the
            # registry fails, this tick rolls back and the next one finalises without it, so
            # a broken output folder cannot keep a finished job from being marked succeeded.
            try:
                if merge.is_merge(job):
                    merge.finish_merge(session, settings=self.settings, job=job)
                else:
                    results.register_job_result(session, settings=self.settings, job=job)
            except Exception:
                self._unregistrable.add(job.id)
                raise
        if ref is not None and (state is None or state.alive):
            self._exiting[ref.external_id or ref.pid] = ref  # watch() drops it once the process is gone
        self.tail.forget(job.id)

    def _publish(self, job: Job, stored: list[dict[str, Any]], *, status_changed: bool) -> None:
        """Fan out what was just committed (never before: a subscriber that replays from the database
        must find every event it is told about). Events have the shape of GET /api/jobs/{id}/events
        items; a status change is announced as `{"type": "job", "job": {id, status, progress,
        last_event_seq}}` - subscribers that need the whole JobPublic re-read the row."""
        if job.status not in {s.value for s in ACTIVE}:
            self.tail.watched.pop(job.id, None)  # nothing more to pump
        channel = job_channel(job.id)
        if not self.hub.has_subscribers(channel):
            return
        for message in stored:  # as the REST events and the replay show them (no server paths)
            self.hub.publish(channel, reads.shown_event(job.id, message))
        if status_changed:
            self.announce(job)

    def announce(self, job: Job) -> None:
        """Tell the job's live subscribers its row changed (call after the commit). Requests call it
        too (start, stop, cancel, resume), so a short-lived status like `stopping` is not missed."""
        summary = {
            "id": job.id,
            "status": job.status,
            "progress": job.progress,
            "last_event_seq": job.last_event_seq,
        }
        self.hub.publish(job_channel(job.id), {"type": "job", "job": summary})
