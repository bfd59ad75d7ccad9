"""The scheduler: the database is the queue (invariant 7).

One loop in the server's lifespan (an asyncio task; every `scheduler_interval_seconds`, and at once
when woken by a submit) runs `tick()` in a worker thread:

1. watch: for every starting / running / stopping job, append the new lines of RUN_DIR/events.jsonl
   to `job_events` (engine seq, so nothing is stored twice), move the status on the engine's status
   events, and finalize a job whose process is gone without a final event (`failed`, with the
   `classify_exit` diagnosis and the last log lines). After a server restart the same code re-attaches
   (PID + process start time) or finalizes from events.jsonl: no job stays running without a process.
2. admit: queued jobs by priority (higher first), then queue time, within the per-user and the global
   running caps; each is prepared (data files, spec.json, demo model) and launched by the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import DatasetVersion, Job, JobEvent
from loraforge.db.session import Database
from loraforge.engine.events import EVENT_ADAPTER, EVENTS_FILE
from loraforge.engine.failures import classify_exit
from loraforge.executors.base import Executor, ProcessRef
from loraforge.executors.local import LocalExecutor
from loraforge.services import job_specs
from loraforge.services.event_hub import EventHub
from loraforge.services.job_states import ACTIVE, JobStatus, StaleJobState, transition
from loraforge.services.jobs import log_tail, process_ref, run_dir_of
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.scheduler")
_MAX_EVENTS_PER_TICK = 5000
_ENGINE_FINAL = {
    "succeeded": JobStatus.succeeded,
    "failed": JobStatus.failed,
    "cancelled": JobStatus.cancelled,
}


def _has_gpu() -> bool:
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        executor: Executor | None = None,
        *,
        hub: EventHub | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.executor: Executor = executor or LocalExecutor()
        self.hub = hub or EventHub()  # live fan-out to WebSocket subscribers (publish after commit)
        self._offsets: dict[int, int] = {}  # job id -> bytes of events.jsonl already read
        self._exiting: dict[int, ProcessRef] = {}  # finished jobs whose process is still exiting
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick_lock = threading.Lock()
        self._closed = False

    # ---- the loop ------------------------------------------------------------------------------

    def wake(self) -> None:
        """Run a tick now (e.g. after a submit); callable from any thread."""
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # loop closed
                self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("scheduler tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.scheduler_interval_seconds)
            self._wake.clear()

    def close(self) -> None:
        """Wait for a tick in progress, then refuse new ones (server shutdown). Engines keep running."""
        with self._tick_lock:
            self._closed = True

    def tick(self) -> None:
        with self._tick_lock, self.database.session() as session:
            if self._closed:
                return
            self.watch(session)
            self.admit(session)

    # ---- watch ---------------------------------------------------------------------------------

    def watch(self, session: Session) -> None:
        for pid, ref in list(self._exiting.items()):
            if not self.executor.state(ref).alive:
                self._exiting.pop(pid, None)
        jobs = session.scalars(select(Job).where(Job.status.in_([s.value for s in ACTIVE])).order_by(Job.id))
        for job in list(jobs):
            try:
                self._watch_one(session, job)
            except StaleJobState:
                self._offsets.pop(job.id, None)  # what this tick read was rolled back
                continue  # a request moved it meanwhile (cancel); it is no longer ours to move
            except Exception:
                session.rollback()
                self._offsets.pop(job.id, None)
                logger.exception("watching job %s failed", job.id)

    def _read_new_events(self, job: Job) -> list[dict[str, Any]]:
        path = Path(job.run_dir or run_dir_of(self.settings, job.id)) / EVENTS_FILE
        offset = self._offsets.get(job.id, 0)
        try:
            with path.open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        complete = data.rfind(b"\n") + 1  # a torn last line waits for the next tick
        self._offsets[job.id] = offset + complete
        events: list[dict[str, Any]] = []
        for line in data[:complete].splitlines():
            if not line.strip():
                continue
            try:
                event = EVENT_ADAPTER.validate_json(line).model_dump(mode="json")
            except ValueError:
                continue
            if isinstance(event.get("seq"), int) and event["seq"] > job.last_event_seq:
                events.append(event)
        return events

    def _watch_one(self, session: Session, job: Job) -> None:
        ref = process_ref(job)
        # Liveness first, events second: whatever the process wrote before it died is read below.
        state = self.executor.state(ref) if ref is not None else None
        events = self._read_new_events(job)
        final: tuple[JobStatus, dict[str, Any] | None] | None = None
        error: dict[str, Any] | None = job.error
        seen: set[int] = set()
        for event in events[:_MAX_EVENTS_PER_TICK]:
            seq = int(event.pop("seq"))
            if seq in seen:
                continue
            seen.add(seq)
            kind = str(event.pop("type"))
            ts = float(event.pop("ts", 0.0) or 0.0)
            session.add(JobEvent(job_id=job.id, seq=seq, type=kind, ts=ts, data=event))
            job.last_event_seq = max(job.last_event_seq, seq)
            if kind == "metric" and isinstance(event.get("progress"), int | float):
                job.progress = float(event["progress"])
            elif kind == "error":
                error = {k: event.get(k) for k in ("code", "message", "suggestion", "details")}
                job.error = error
            elif kind == "status":
                status = event.get("status")
                if status == "training" and job.status == JobStatus.starting.value:
                    transition(session, job, JobStatus.running)
                elif status in _ENGINE_FINAL:
                    final = (_ENGINE_FINAL[status], error)
                    break
        if len(events) > _MAX_EVENTS_PER_TICK or (final is None and len(seen) < len(events)):
            self._offsets.pop(job.id, None)  # re-read the rest next tick (seq filter skips stored ones)
        try:
            session.flush()
        except IntegrityError:  # another server stored them first
            session.rollback()
            self._offsets.pop(job.id, None)
            return
        if final is not None:
            target, err = final
            if target is JobStatus.succeeded:
                job.progress = 1.0
            transition(session, job, target, error=err if target is not JobStatus.succeeded else None)
            if ref is not None and state is not None and state.alive:
                self._exiting[ref.pid] = ref
            self._offsets.pop(job.id, None)
        elif ref is None:
            # Launching runs inside a tick under the tick lock, so a starting job without a PID seen
            # here was left by a server that stopped mid-launch.
            transition(session, job, JobStatus.failed, error={
                "code": "launch_interrupted", "message": "the server stopped while launching this job",
                "suggestion": "Start the job again (clone it).", "details": {},
            })  # fmt: skip
        elif state is not None and not state.alive:
            self._finalize_dead(session, job, state.returncode, error)
        elif job.status == JobStatus.stopping.value and job.stop_requested_at is not None:
            waited = utcnow() - job.stop_requested_at
            if waited > timedelta(seconds=self.settings.job_stop_timeout_seconds):
                self.executor.cancel(ref)
        session.commit()

    def _finalize_dead(
        self, session: Session, job: Job, returncode: int | None, error: dict[str, Any] | None
    ) -> None:
        last_lines = log_tail(self.settings, job, 20)
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
        self._offsets.pop(job.id, None)

    # ---- admit ---------------------------------------------------------------------------------

    def admit(self, session: Session) -> None:
        active = [s.value for s in ACTIVE]
        per_user = dict(
            session.execute(
                select(Job.owner_id, func.count()).where(Job.status.in_(active)).group_by(Job.owner_id)
            ).all()
        )
        running = sum(per_user.values())
        if running >= self.settings.max_running_jobs:
            return
        queued = session.scalars(
            select(Job)
            .where(Job.status == JobStatus.queued.value)
            .order_by(Job.priority.desc(), Job.queued_at.asc(), Job.id.asc())
            .limit(1000)
        ).all()
        for job in queued:
            if running >= self.settings.max_running_jobs:
                break
            if per_user.get(job.owner_id, 0) >= self.settings.max_running_jobs_per_user:
                continue
            try:
                transition(session, job, JobStatus.starting)
                session.commit()
            except StaleJobState:
                continue
            per_user[job.owner_id] = per_user.get(job.owner_id, 0) + 1
            running += 1
            self._launch(session, job)

    def _launch(self, session: Session, job: Job) -> None:
        run_dir = Path(job.run_dir or run_dir_of(self.settings, job.id))
        try:
            version = session.get(DatasetVersion, job.dataset_version_id) if job.dataset_version_id else None
            if version is None:
                raise RuntimeError("the pinned dataset version no longer exists")
            run_dir.mkdir(parents=True, exist_ok=True)
            spec = job_specs.engine_spec(self.settings, spec=job.spec, version=version, run_dir=run_dir)
            (run_dir / "spec.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
            env = dict(os.environ)
            env["PYTHONUNBUFFERED"] = "1"
            env.setdefault("LORAFORGE_DATA_CACHE", str(self.settings.data_dir / "cache" / "data"))
            if spec.get("devices") == "cpu" or spec.get("use_cpu") or not _has_gpu():
                env["CUDA_VISIBLE_DEVICES"] = ""
            ref = self.executor.launch(job_id=job.id, run_dir=run_dir, env=env)
        except Exception as exc:
            logger.exception("launching job %s failed", job.id)
            session.rollback()
            job = session.get(Job, job.id) or job
            with contextlib.suppress(StaleJobState):
                transition(session, job, JobStatus.failed, error={
                    "code": "launch_failed", "message": str(exc)[:4000], "suggestion": None, "details": {},
                })  # fmt: skip
                session.commit()
            return
        session.refresh(job)
        job.pid, job.pid_started_at, job.engine_spec = ref.pid, ref.started_at, spec
        job.external_id = ref.external_id
        session.commit()
        # A stop or cancel may have arrived while launching (the job had no PID to signal yet).
        if job.status == JobStatus.stopping.value:
            self.executor.stop(ref)
        elif job.status == JobStatus.cancelled.value:
            self.executor.cancel(ref)
