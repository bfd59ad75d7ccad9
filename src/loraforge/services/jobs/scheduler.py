"""The scheduler: the database is the queue (invariant 7, docs/architecture.md).

One loop in the server's lifespan (an asyncio task; every `scheduler_interval_seconds`, and at once
when woken by a submit) runs `tick()` in a worker thread:

1. watch (`services.jobs.watch`): for every starting / running / stopping job, append the new lines
   of RUN_DIR/events.jsonl to `job_events` (engine seq, so nothing is stored twice), move the status
   on the engine's status events, and finalize a job whose process is gone without a final event
   (`services.jobs.recovery`: `failed`, with the `classify_exit` diagnosis and the last log lines).
   After a server restart the same code re-attaches (PID + process start time) or finalizes from
   events.jsonl: no job stays running without a process.
2. admit (`services.jobs.admission`): queued jobs by priority (higher first), then queue time, within
   the per-user and the global running caps; each is prepared (data files, spec.json, demo model) and
   launched by the executor.

Between ticks, while jobs are active, the event pump ingests the events of jobs whose events.jsonl
grew (`services.jobs.tailing`), so live curves do not wait for the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import ACTIVE, Job
from loraforge.db.session import Database
from loraforge.executors.base import Executor
from loraforge.executors.local import LocalExecutor
from loraforge.services.jobs import admission
from loraforge.services.jobs.tailing import EventTail
from loraforge.services.jobs.watch import JobWatcher
from loraforge.services.platform.event_hub import EventHub
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.scheduler")

# Called at the end of every tick with the tick's session (e.g. the evaluations' sync); a hook that
# raises is logged and rolled back, the tick itself stands.
TickHook = Callable[[Session], None]


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        executor: Executor | None = None,
        *,
        hub: EventHub | None = None,
        hooks: list[TickHook] | None = None,
        stages: Mapping[str, admission.StageBuilder] | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.executor: Executor = executor or LocalExecutor()
        self.hub = hub or EventHub()  # live fan-out to WebSocket subscribers (publish after commit)
        self.hooks: list[TickHook] = list(hooks or [])
        self.stages: dict[str, admission.StageBuilder] = dict(stages or {})  # domains above jobs
        self._tail = EventTail(settings)
        self._watcher = JobWatcher(settings, self.executor, self.hub, self._tail)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick_lock = threading.Lock()
        self._closed = False

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
                grown = self._tail.grown()
                if grown:
                    await self._in_thread(functools.partial(self.pump, grown), "event pump")
            wait = next_tick - time.monotonic()
            if self._tail.watched:
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
            self._watcher.watch(session)
            admission.admit(session, self.settings, self.executor, self.stages)
            self._tail.refresh(session)
            for hook in self.hooks:
                try:
                    hook(session)
                except Exception:
                    session.rollback()
                    logger.exception("scheduler hook %r failed", hook)

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
            self._watcher.watch_jobs(session, list(jobs), check_process=False)

    def announce(self, job: Job) -> None:
        """Tell the job's live subscribers its row changed (call after the commit). Requests call it
        too (start, stop, cancel, resume), so a short-lived status like `stopping` is not missed."""
        self._watcher.announce(job)
