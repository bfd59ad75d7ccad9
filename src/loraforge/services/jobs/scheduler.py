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
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ACTIVE, DatasetVersion, Job, JobEvent, JobStatus
from loraforge.db.session import Database
from loraforge.engine.events import EVENT_ADAPTER, EVENTS_FILE
from loraforge.engine.failures import classify_exit
from loraforge.executors.base import Executor, ProcessRef
from loraforge.executors.local import LocalExecutor
from loraforge.services.jobs import files as job_files
from loraforge.services.jobs import gpu_fit as gpus
from loraforge.services.jobs import metric_store
from loraforge.services.jobs import specs as job_specs
from loraforge.services.jobs.lifecycle import log_tail, process_ref, run_dir_of
from loraforge.services.jobs.states import StaleJobState, transition
from loraforge.services.models import catalog as registry
from loraforge.services.platform.event_hub import EventHub, job_channel
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
        # Finished jobs whose process is still exiting, by the ref's key (Ray refs all have pid 0).
        self._exiting: dict[str | int, ProcessRef] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick_lock = threading.Lock()
        self._closed = False
        # The event pump's view: active job id -> its events.jsonl, and the size read last time.
        self._watched: dict[int, Path] = {}
        self._sizes: dict[int, int] = {}
        # Jobs whose model registration failed once: finalised without it (logged) from then on.
        self._unregistrable: set[int] = set()

    # ---- the loop ------------------------------------------------------------------------------

    def wake(self) -> None:
        """Run a tick now (e.g. after a submit); callable from any thread."""
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # loop closed
                self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Two cadences in one loop. A full tick (watch every active job, then admit) every
        `scheduler_interval_seconds` or when woken; between ticks, while jobs are active, the event
        pump: every `event_poll_seconds` stat each active job's events.jsonl (in this thread: a stat
        is microseconds) and only when one grew ingest it in a worker thread. No job, no pump."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        next_tick = 0.0
        while True:
            if self._wake.is_set() or time.monotonic() >= next_tick:
                self._wake.clear()
                await self._in_thread(self.tick, "scheduler tick")
                next_tick = time.monotonic() + self.settings.scheduler_interval_seconds
            else:
                grown = self._grown_event_files()
                if grown:
                    await self._in_thread(functools.partial(self.pump, grown), "event pump")
            wait = next_tick - time.monotonic()
            if self._watched:
                wait = min(wait, self.settings.event_poll_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(wait, 0.0))

    @staticmethod
    async def _in_thread(work: Callable[[], None], what: str) -> None:
        try:
            await asyncio.to_thread(work)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s failed", what)

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
            self._refresh_watched(session)

    def pump(self, job_ids: list[int]) -> None:
        """Ingest the new events of these jobs now (their events.jsonl grew); no liveness checks,
        those stay on the tick's cadence (a Ray executor's state() is an HTTP call)."""
        with self._tick_lock, self.database.session() as session:
            if self._closed:
                return
            jobs = session.scalars(
                select(Job)
                .where(Job.id.in_(job_ids), Job.status.in_([s.value for s in ACTIVE]))
                .order_by(Job.id)
            )
            self._watch_jobs(session, list(jobs), check_process=False)

    def _refresh_watched(self, session: Session) -> None:
        rows = session.execute(
            select(Job.id, Job.run_dir).where(Job.status.in_([s.value for s in ACTIVE]))
        ).all()
        self._watched = {
            job_id: Path(run_dir or run_dir_of(self.settings, job_id)) / EVENTS_FILE
            for job_id, run_dir in rows
        }
        for gone in set(self._sizes) - set(self._watched):
            self._sizes.pop(gone, None)

    def _grown_event_files(self) -> list[int]:
        """Active jobs whose events.jsonl size differs from what was last read (cheap: one stat each)."""
        grown: list[int] = []
        for job_id, path in list(self._watched.items()):
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size != self._sizes.get(job_id):
                grown.append(job_id)
        return grown

    # ---- watch ---------------------------------------------------------------------------------

    def watch(self, session: Session) -> None:
        """Ingest events of, and check the process of, every starting / running / stopping job."""
        for key, ref in list(self._exiting.items()):
            if not self.executor.state(ref).alive:
                self._exiting.pop(key, None)
        jobs = session.scalars(select(Job).where(Job.status.in_([s.value for s in ACTIVE])).order_by(Job.id))
        self._watch_jobs(session, list(jobs), check_process=True)

    def _watch_jobs(self, session: Session, jobs: list[Job], *, check_process: bool) -> None:
        for job in jobs:
            try:
                self._watch_one(session, job, check_process=check_process)
            except StaleJobState:
                self._forget_offset(job.id)  # what this tick read was rolled back
                continue  # a request moved it meanwhile (cancel); it is no longer ours to move
            except Exception:
                session.rollback()
                self._forget_offset(job.id)
                logger.exception("watching job %s failed", job.id)

    def _forget_offset(self, job_id: int) -> None:
        """Re-read events.jsonl from the start next time (the seq filter skips stored events)."""
        self._offsets.pop(job_id, None)
        self._sizes.pop(job_id, None)  # and let the pump see it as changed

    def _read_new_events(self, job: Job) -> list[dict[str, Any]]:
        path = Path(job.run_dir or run_dir_of(self.settings, job.id)) / EVENTS_FILE
        offset = self._offsets.get(job.id, 0)
        try:
            with path.open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        complete = data.rfind(b"\n") + 1  # a torn last line waits for the next read
        self._offsets[job.id] = offset + complete
        self._sizes[job.id] = offset + len(data)
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

    def _watch_one(self, session: Session, job: Job, *, check_process: bool = True) -> None:
        """Store the job's new events, move its status, and publish both after the commit.

        With `check_process=False` (the event pump) only the events are handled; liveness, launch
        leftovers and the stop timeout wait for the next full tick.
        """
        ref = process_ref(job)
        # Liveness first, events second: whatever the process wrote before it died is read below.
        state = self.executor.state(ref) if ref is not None and check_process else None
        status_before = job.status
        events = self._read_new_events(job)
        final: tuple[JobStatus, dict[str, Any] | None] | None = None
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
            self._forget_offset(job.id)  # re-read the rest next time (seq filter skips stored ones)
        try:
            session.flush()
        except IntegrityError:  # another server stored them first
            session.rollback()
            self._forget_offset(job.id)
            return
        metric_store.on_events_stored(self.settings, session, job.id, stored)
        if final is not None:
            target, err = final
            if target is JobStatus.succeeded:
                job.progress = 1.0
            transition(session, job, target, error=err if target is not JobStatus.succeeded else None)
            if target is JobStatus.succeeded and job.id not in self._unregistrable:
                # Same transaction: the model is listed the moment the job reads `succeeded`. If the
                # registry fails, this tick rolls back and the next one finalises without it, so
                # a broken output folder cannot keep a finished job from being marked succeeded.
                try:
                    registry.register_job_result(session, settings=self.settings, job=job)
                except Exception:
                    self._unregistrable.add(job.id)
                    raise
            if ref is not None and (state is None or state.alive):
                self._exiting[ref.external_id or ref.pid] = ref  # watch() drops it once the process is gone
            self._forget_offset(job.id)
        elif not check_process:
            pass
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
        self._publish(job, stored, status_changed=job.status != status_before)

    def _publish(self, job: Job, stored: list[dict[str, Any]], *, status_changed: bool) -> None:
        """Fan out what was just committed (never before: a subscriber that replays from the database
        must find every event it is told about). Events have the shape of GET /api/jobs/{id}/events
        items; a status change is announced as `{"type": "job", "job": {id, status, progress,
        last_event_seq}}` - subscribers that need the whole JobPublic re-read the row."""
        if job.status not in {s.value for s in ACTIVE}:
            self._watched.pop(job.id, None)  # nothing more to pump
        channel = job_channel(job.id)
        if not self.hub.has_subscribers(channel):
            return
        for message in stored:
            self.hub.publish(channel, message)
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
        self._forget_offset(job.id)

    # ---- admit ---------------------------------------------------------------------------------

    def admit(self, session: Session) -> None:
        """Start queued jobs in order (priority desc, queued_at, id) within the per-user and global
        caps and the free GPUs (`services.jobs.gpu_fit`). A job whose GPUs are not free now waits, and jobs
        behind it that fit (fewer GPUs, or CPU only) may start before it: the node stays busy, at the
        price that a many-GPU job can wait long on a busy node (operators raise its priority, or
        reorder, to hold the others back). A job needing more GPUs than the node has fails at once."""
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
        # Device indices are handed out only by the local executor; Ray places GPUs itself and just
        # gets the count (`auto` counts as one GPU only where LORAFORGE_GPU_COUNT says GPUs exist).
        local = self.executor.name == "local"
        node_gpus = gpus.inventory(self.settings) if local else (self.settings.gpu_count or 0)
        free = set(range(node_gpus)) - gpus.held_devices(session) if local else set()
        for job in queued:
            if running >= self.settings.max_running_jobs:
                break
            if per_user.get(job.owner_id, 0) >= self.settings.max_running_jobs_per_user:
                continue
            need = gpus.demand(job.spec, node_gpus)
            devices: list[int] | None = None
            if local and need > node_gpus:
                self._refuse(session, job, need, node_gpus)
                continue
            if local and need:
                devices = gpus.pick(need, free, gpus.requested_indices(job.spec))
                if devices is None:
                    continue  # waits for devices; later jobs that fit may go first
            try:
                transition(session, job, JobStatus.starting, devices=devices)
                session.commit()
            except StaleJobState:
                continue
            free -= set(devices or [])
            per_user[job.owner_id] = per_user.get(job.owner_id, 0) + 1
            running += 1
            self._launch(session, job, num_gpus=need)

    def _refuse(self, session: Session, job: Job, need: int, node_gpus: int) -> None:
        """Fail a job that can never fit this node (submit refuses it too; the node may have shrunk)."""
        with contextlib.suppress(StaleJobState):
            transition(session, job, JobStatus.starting)
            transition(session, job, JobStatus.failed, error={
                "code": "not_enough_gpus",
                "message": f"The job needs {need} GPU(s) but this node has {node_gpus}.",
                "suggestion": "Set devices to fewer GPU indices, or to cpu.",
                "details": {"spec_patch": {"devices": "cpu"}} if node_gpus == 0 else {},
            })  # fmt: skip
            session.commit()

    def _training_spec(self, session: Session, job: Job, run_dir: Path) -> dict[str, Any]:
        version = session.get(DatasetVersion, job.dataset_version_id) if job.dataset_version_id else None
        if version is None:
            raise RuntimeError("the pinned dataset version no longer exists")
        validation_id = (job.spec or {}).get("validation_dataset_version")
        validation = session.get(DatasetVersion, validation_id) if isinstance(validation_id, int) else None
        spec = job_specs.engine_spec(
            self.settings, spec=job.spec, version=version, run_dir=run_dir, validation=validation
        )
        job_specs.apply_registered_models(session, settings=self.settings, spec=spec)
        return spec

    def _launch(self, session: Session, job: Job, *, num_gpus: int = 0) -> None:
        run_dir = Path(job.run_dir or run_dir_of(self.settings, job.id))
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            if (job.spec or {}).get("stage") == registry.MERGE_STAGE:
                # A merge job (model registry) has no dataset: base + adapter folders from the version.
                spec = registry.merge_engine_spec(session, settings=self.settings, job=job, run_dir=run_dir)
            else:
                spec = self._training_spec(session, job, run_dir)
            if job.resume_from:
                # Looked up in the run's own listing (the name was validated at resume time; retention
                # may have removed it since): never a path a user wrote.
                checkpoint = job_files.find_checkpoint(run_dir, job.resume_from)
                if checkpoint is None:
                    raise RuntimeError(f"checkpoint {job.resume_from} to resume from no longer exists")
                spec["resume_from_checkpoint"] = str(checkpoint.path)
            if job.devices and isinstance(spec.get("devices"), list):
                # The engine pins a device list itself (torchrun + CUDA_VISIBLE_DEVICES): give it the
                # indices admission handed out rather than the ones the user asked for.
                spec["devices"] = list(job.devices)
            (run_dir / "spec.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
            env = dict(os.environ)
            env["PYTHONUNBUFFERED"] = "1"
            env.setdefault("LORAFORGE_DATA_CACHE", str(self.settings.data_dir / "cache" / "data"))
            if job.devices:
                env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in job.devices)
            elif spec.get("devices") == "cpu" or spec.get("use_cpu") or not _has_gpu() or num_gpus == 0:
                env["CUDA_VISIBLE_DEVICES"] = ""
            # The GPU count only when there is one: executors written before `num_gpus` joined the
            # Protocol (test doubles) keep working for CPU jobs.
            gpu_args = {"num_gpus": num_gpus} if num_gpus else {}
            ref = self.executor.launch(job_id=job.id, run_dir=run_dir, env=env, **gpu_args)
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
        job.executor = self.executor.name  # where it really ran
        session.commit()
        # A stop or cancel may have arrived while launching (the job had no PID to signal yet).
        if job.status == JobStatus.stopping.value:
            self.executor.stop(ref)
        elif job.status == JobStatus.cancelled.value:
            self.executor.cancel(ref)
