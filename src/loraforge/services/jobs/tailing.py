"""Following the active jobs' RUN_DIR/events.jsonl: what was read of each file, the new complete
events past what the database holds, and which files grew since (the event pump's cheap check).

State only of this server process: after a restart every file is read from the start again and the
engine's seq (`jobs.last_event_seq`) skips what is already stored, so nothing is stored twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import ACTIVE, Job
from loraforge.engine.events import EVENT_ADAPTER, EVENTS_FILE
from loraforge.services.jobs.access import job_run_dir, run_dir_of
from loraforge.settings import Settings


class EventTail:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._offsets: dict[int, int] = {}  # job id -> bytes of events.jsonl already read
        # The event pump's view: active job id -> its events.jsonl, and the size read last time.
        self.watched: dict[int, Path] = {}
        self._sizes: dict[int, int] = {}

    def forget(self, job_id: int) -> None:
        """Re-read events.jsonl from the start next time (the seq filter skips stored events)."""
        self._offsets.pop(job_id, None)
        self._sizes.pop(job_id, None)  # and let the pump see it as changed

    def read_new(self, job: Job) -> list[dict[str, Any]]:
        """The complete events written since the last read whose seq is above the job's stored ones."""
        path = job_run_dir(self.settings, job) / EVENTS_FILE
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

    def refresh(self, session: Session) -> None:
        """Watch exactly the jobs active now (after a tick admitted or finalised some)."""
        rows = session.execute(
            select(Job.id, Job.run_dir).where(Job.status.in_([s.value for s in ACTIVE]))
        ).all()
        self.watched = {
            job_id: Path(run_dir or run_dir_of(self.settings, job_id)) / EVENTS_FILE
            for job_id, run_dir in rows
        }
        for gone in set(self._sizes) - set(self.watched):
            self._sizes.pop(gone, None)

    def grown(self) -> list[int]:
        """Active jobs whose events.jsonl size differs from what was last read (cheap: one stat each)."""
        grown: list[int] = []
        for job_id, path in list(self.watched.items()):
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size != self._sizes.get(job_id):
                grown.append(job_id)
        return grown
