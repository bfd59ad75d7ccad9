"""A job's run files as the API serves them: readable engine output (a tail, or pages by byte offset),
the log download, checkpoints and artifacts with their `.tar.gz` streams. Access-checked here
(`services.jobs.access.get_job`); the listings themselves are `services.jobs.files`'.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobEvent, User
from loraforge.engine.events import MARKER, parse_line
from loraforge.errors import NotFound
from loraforge.services.jobs import files as job_files
from loraforge.services.jobs.access import get_job, job_run_dir
from loraforge.services.platform.archives import tar_gz_stream
from loraforge.settings import Settings


def _tail_lines(path: Path, n: int, block: int = 64 * 1024) -> list[str]:
    if n <= 0 or not path.exists():
        return []
    with path.open("rb") as fh:
        fh.seek(0, 2)
        end = fh.tell()
        data = b""
        while end > 0 and data.count(b"\n") <= n:
            start = max(0, end - block)
            fh.seek(start)
            data = fh.read(end - start) + data
            end = start
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-n:] if len(lines) > n else lines


def _readable(lines: list[str]) -> Iterator[str]:
    """Engine output for people: plain log text as is, marked log/error events as their message."""
    for line in lines:
        if MARKER not in line:
            yield line.rsplit("\r", 1)[-1]
            continue
        event = parse_line(line)
        message = getattr(event, "message", None)
        if event.type == "log" and message:
            yield str(message)
        elif event.type == "error":
            yield f"ERROR {getattr(event, 'code', '')}: {message}"
        elif event.type == "status":
            yield f"[status] {getattr(event, 'status', '')}" + (f": {message}" if message else "")


def log_tail(settings: Settings, job: Job, n: int) -> list[str]:
    path = job_files.log_path(job_run_dir(settings, job))
    # Marked event lines are skipped or shortened, so read more raw lines than asked for.
    return list(_readable(_tail_lines(path, n * 4)))[-n:]


@dataclass(frozen=True)
class LogPage:
    lines: list[str]
    offset: int
    next_offset: int
    size: int


def log_page(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    job_id: int,
    tail: int,
    offset: int | None,
    limit: int,
) -> LogPage:
    """Readable engine output: the last `tail` lines, or with `offset` up to `limit` bytes from there.
    Offsets are raw bytes of engine.log; follow a running job by passing `next_offset` back."""
    run_dir = job_run_dir(settings, get_job(session, actor=actor, job_id=job_id))
    if offset is None:
        # Marked event lines are skipped or shortened, so read more raw lines than asked for.
        raw = job_files.tail_range(run_dir, tail * 4)
        lines = list(_readable(raw.lines))[-tail:]
    else:
        raw = job_files.read_log_range(run_dir, offset, limit)
        lines = list(_readable(raw.lines))
    return LogPage(lines=lines, offset=raw.offset, next_offset=raw.next_offset, size=raw.size)


def log_file(session: Session, *, settings: Settings, actor: User, job_id: int) -> tuple[Path, str]:
    """engine.log of the job and a download file name (from the id, never from the job's name)."""
    job = get_job(session, actor=actor, job_id=job_id)
    path = job_files.log_path(job_run_dir(settings, job))
    if not path.is_file():
        raise NotFound("the job has no log yet", code="log_not_found")
    return path, f"job-{job.id}-engine.log"


def _events_of(session: Session, job_id: int, kind: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(JobEvent.data).where(JobEvent.job_id == job_id, JobEvent.type == kind).order_by(JobEvent.seq)
    )
    return [dict(data or {}) for data in rows]


def checkpoints(
    session: Session, *, settings: Settings, actor: User, job_id: int
) -> list[tuple[job_files.Checkpoint, dict[str, Any]]]:
    """The job's complete checkpoints with the metrics its checkpoint events reported (by step)."""
    job = get_job(session, actor=actor, job_id=job_id)
    reported = {e.get("step"): e.get("metrics") or {} for e in _events_of(session, job.id, "checkpoint")}
    found = job_files.checkpoints(job_run_dir(settings, job))
    return [(c, dict(reported.get(c.step) or {})) for c in found]


def checkpoint_archive(
    session: Session, *, settings: Settings, actor: User, job_id: int, name: str
) -> tuple[Iterator[bytes], str]:
    """A streamed .tar.gz of one checkpoint (`name` looked up in the listing) and its file name."""
    job = get_job(session, actor=actor, job_id=job_id)
    found = job_files.find_checkpoint(job_run_dir(settings, job), name)
    if found is None:
        raise NotFound(f"job {job.id} has no checkpoint {name!r}", code="checkpoint_not_found")
    arcname = f"job-{job.id}-{found.name}"
    return tar_gz_stream(found.path, arcname), f"{arcname}.tar.gz"


def artifacts(session: Session, *, settings: Settings, actor: User, job_id: int) -> list[job_files.Artifact]:
    """The job's outputs (adapter or full model with tokenizer, summary), from its artifact events
    and its output folder."""
    job = get_job(session, actor=actor, job_id=job_id)
    return job_files.artifacts(job_run_dir(settings, job), _events_of(session, job.id, "artifact"))


def artifact_archive(
    session: Session, *, settings: Settings, actor: User, job_id: int, name: str
) -> tuple[Iterator[bytes], str]:
    job = get_job(session, actor=actor, job_id=job_id)
    listing = job_files.artifacts(job_run_dir(settings, job), _events_of(session, job.id, "artifact"))
    found = next((a for a in listing if a.name == name), None)
    if found is None:
        raise NotFound(f"job {job.id} has no artifact {name!r}", code="artifact_not_found")
    arcname = f"job-{job.id}-{found.name}"
    return tar_gz_stream(found.path, arcname), f"{arcname}.tar.gz"
