"""Jobs: create (spec validated by the engine's schema, dataset version pinned), list, read, start,
stop, cancel, clone, delete; events, metrics and logs. Status changes go through `job_states`.

Access (`services.ownership`): the owner; operators and admins may read, stop and cancel anyone's
job; only the owner starts, clones into their own drafts, or deletes.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobEvent, User
from loraforge.engine.events import MARKER, parse_line
from loraforge.executors.base import LOG_FILE, Executor, ProcessRef
from loraforge.services import audit, job_specs, ownership
from loraforge.services.audit import AuditAction
from loraforge.services.errors import Conflict, Forbidden, NotFound
from loraforge.services.job_states import ACTIVE, FINAL, PENDING_OR_ACTIVE, JobStatus, transition
from loraforge.settings import Settings

STAFF = ownership.STAFF


def run_dir_of(settings: Settings, job_id: int) -> Path:
    return settings.runs_dir / str(int(job_id))


def dataset_in_use(session: Session, *, dataset_id: int) -> bool:
    """Whether a queued, starting, running or stopping job pins the dataset."""
    statuses = [s.value for s in PENDING_OR_ACTIVE]
    query = select(Job.id).where(Job.dataset_id == dataset_id, Job.status.in_(statuses)).limit(1)
    return session.scalar(query) is not None


# ---- access ----------------------------------------------------------------------------------------------


def get_job(session: Session, *, actor: User, job_id: int, staff_may: frozenset[Any] = STAFF) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound("job not found", code="job_not_found")
    ownership.ensure_access(actor, job.owner_id, staff_may=STAFF, resource="job")
    if not ownership.can_access(actor, job.owner_id, staff_may=staff_may):
        raise Forbidden("only the owner may do this with the job", code="not_owner")
    return job


# ---- create / list ----------------------------------------------------------------------------------------


def _new_job(
    session: Session, *, settings: Settings, owner: User, name: str, checked: job_specs.CheckedSpec
) -> Job:
    job = Job(
        owner_id=owner.id,
        name=name,
        status=JobStatus.draft.value,
        priority=0,
        spec=checked.spec,
        dataset_id=checked.dataset.id,
        dataset_version_id=checked.version.id,
        executor="local",
    )
    session.add(job)
    session.flush()
    job.run_dir = str(run_dir_of(settings, job.id))
    return job


def create_job(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    name: str,
    spec: dict[str, Any],
    start: bool,
    ip: str | None,
) -> Job:
    checked = job_specs.check_spec(session, actor=actor, spec=spec)
    job = _new_job(session, settings=settings, owner=actor, name=name, checked=checked)
    audit.record(
        session, action=AuditAction.job_created, actor=actor, target_type="job", target_id=job.id, ip=ip,
        details={"name": name, "dataset_id": checked.dataset.id, "dataset_version_id": checked.version.id},
    )  # fmt: skip
    if start:
        transition(session, job, JobStatus.queued)
        audit.record(
            session, action=AuditAction.job_started, actor=actor, target_type="job", target_id=job.id, ip=ip
        )
    session.commit()
    return job


@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    total: int


def list_jobs(
    session: Session,
    *,
    actor: User,
    statuses: list[str] | None,
    owner_id: int | None,
    offset: int,
    limit: int,
) -> JobPage:
    query = select(Job)
    scope = ownership.owner_scope(actor, staff_may=STAFF)
    if scope is not None:
        query = query.where(Job.owner_id == scope)
    elif owner_id is not None:
        query = query.where(Job.owner_id == owner_id)
    if statuses:
        query = query.where(Job.status.in_(statuses))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).offset(offset).limit(limit))
    return JobPage(items=list(rows), total=total)


@dataclass(frozen=True)
class QueueEntry:
    position: int
    job: Job


def queue(session: Session, *, actor: User) -> tuple[list[QueueEntry], list[Job]]:
    """Queued jobs in admission order (1-based positions over everyone's queue) and the active jobs.
    Researchers see their own entries, with their place in the whole queue."""
    queued = session.scalars(
        select(Job)
        .where(Job.status == JobStatus.queued.value)
        .order_by(Job.priority.desc(), Job.queued_at.asc(), Job.id.asc())
    ).all()
    active = session.scalars(
        select(Job).where(Job.status.in_([s.value for s in ACTIVE])).order_by(Job.started_at, Job.id)
    ).all()
    scope = ownership.owner_scope(actor, staff_may=STAFF)
    entries = [QueueEntry(position=i, job=j) for i, j in enumerate(queued, 1) if scope in (None, j.owner_id)]
    return entries, [j for j in active if scope in (None, j.owner_id)]


# ---- actions ---------------------------------------------------------------------------------------------


def start_job(session: Session, *, actor: User, job_id: int, ip: str | None) -> Job:
    job = get_job(session, actor=actor, job_id=job_id, staff_may=frozenset())
    if job.status != JobStatus.draft.value:  # failed/cancelled -> queued is resume's, not start's
        raise Conflict(f"a {job.status} job cannot be started; resume or clone it", code="invalid_transition")
    transition(session, job, JobStatus.queued)
    audit.record(
        session, action=AuditAction.job_started, actor=actor, target_type="job", target_id=job.id, ip=ip
    )
    session.commit()
    return job


def process_ref(job: Job) -> ProcessRef | None:
    """How the job's executor finds its process again; None while nothing was launched."""
    if job.external_id is not None:
        return ProcessRef(pid=job.pid or 0, started_at=job.pid_started_at or 0.0, external_id=job.external_id)
    if job.pid is None:
        return None
    return ProcessRef(pid=job.pid, started_at=job.pid_started_at or 0.0)


def stop_job(session: Session, *, executor: Executor, actor: User, job_id: int, ip: str | None) -> Job:
    """Graceful: the engine saves a checkpoint and reports `cancelled`. A queued job is just cancelled."""
    job = get_job(session, actor=actor, job_id=job_id)
    status = JobStatus(job.status)
    if status is JobStatus.queued:
        transition(
            session,
            job,
            JobStatus.cancelled,
            error={"code": "stopped", "message": "stopped before it started"},
        )
    elif status in (JobStatus.starting, JobStatus.running):
        transition(session, job, JobStatus.stopping)
    else:
        raise Conflict(f"a {status} job cannot be stopped", code="invalid_transition")
    audit.record(
        session, action=AuditAction.job_stopped, actor=actor, target_type="job", target_id=job.id, ip=ip
    )
    session.commit()
    ref = process_ref(job)
    if ref is not None and job.status == JobStatus.stopping.value:
        executor.stop(ref)
    return job


def cancel_job(session: Session, *, executor: Executor, actor: User, job_id: int, ip: str | None) -> Job:
    """Immediate: the job is `cancelled` now and its process group is killed."""
    job = get_job(session, actor=actor, job_id=job_id)
    transition(
        session, job, JobStatus.cancelled,
        error={"code": "cancelled", "message": f"cancelled by {actor.username}"},
    )  # fmt: skip
    audit.record(
        session, action=AuditAction.job_cancelled, actor=actor, target_type="job", target_id=job.id, ip=ip
    )
    session.commit()
    ref = process_ref(job)
    if ref is not None:
        executor.cancel(ref)
    return job


def clone_job(session: Session, *, settings: Settings, actor: User, job_id: int, ip: str | None) -> Job:
    """A new draft of the caller's with this job's spec (the same pinned dataset version)."""
    source = get_job(session, actor=actor, job_id=job_id)
    checked = job_specs.check_spec(session, actor=actor, spec=dict(source.spec))
    name = f"{source.name} (copy)"[:200]
    job = _new_job(session, settings=settings, owner=actor, name=name, checked=checked)
    audit.record(
        session, action=AuditAction.job_created, actor=actor, target_type="job", target_id=job.id, ip=ip,
        details={"name": name, "cloned_from": source.id},
    )  # fmt: skip
    session.commit()
    return job


def delete_job(session: Session, *, settings: Settings, actor: User, job_id: int, ip: str | None) -> None:
    job = get_job(session, actor=actor, job_id=job_id, staff_may=frozenset())
    if job.status != JobStatus.draft.value and JobStatus(job.status) not in FINAL:
        raise Conflict(f"a {job.status} job cannot be deleted; stop or cancel it first", code="job_active")
    folder = run_dir_of(settings, job.id)
    audit.record(
        session, action=AuditAction.job_deleted, actor=actor, target_type="job", target_id=job.id, ip=ip,
        details={"name": job.name, "owner_id": job.owner_id, "status": job.status},
    )  # fmt: skip
    session.delete(job)
    session.commit()
    shutil.rmtree(folder, ignore_errors=True)


# ---- events, metrics, logs ----------------------------------------------------------------------


def events_after(session: Session, *, actor: User, job_id: int, after: int, limit: int) -> list[JobEvent]:
    get_job(session, actor=actor, job_id=job_id)
    query = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.seq > after)
        .order_by(JobEvent.seq)
        .limit(limit)
    )
    return list(session.scalars(query))


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def downsample(points: list[dict[str, Any]], target: int, key: str = "loss") -> list[dict[str, Any]]:
    """At most ~`target` points: the first and last, and per bucket the lowest and highest `key`
    (so spikes and the best value survive), in step order."""
    if target <= 0 or len(points) <= target:
        return points
    inner = points[1:-1]
    buckets = max(1, (target - 2) // 2)
    size = len(inner) / buckets
    keep: list[dict[str, Any]] = [points[0]]
    for b in range(buckets):
        chunk = inner[int(b * size) : int((b + 1) * size)]
        if not chunk:
            continue
        valued = [p for p in chunk if p.get(key) is not None]
        if not valued:
            keep.append(chunk[0])
            continue
        low = min(valued, key=lambda p: p[key])
        high = max(valued, key=lambda p: p[key])
        keep += sorted({id(low): low, id(high): high}.values(), key=lambda p: p["step"])
    keep.append(points[-1])
    return keep


METRIC_KEYS = ("loss", "lr", "grad_norm", "epoch", "tokens_per_s", "progress", "eta_s", "elapsed_s")


def metrics(session: Session, *, actor: User, job_id: int, target: int) -> dict[str, Any]:
    get_job(session, actor=actor, job_id=job_id)
    rows = session.execute(
        select(JobEvent.type, JobEvent.data)
        .where(JobEvent.job_id == job_id, JobEvent.type.in_(["metric", "eval"]))
        .order_by(JobEvent.seq)
    ).all()
    train: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    for kind, data in rows:
        step = data.get("step")
        if not isinstance(step, int):
            continue
        if kind == "metric":
            train.append({"step": step, **{k: _finite(data.get(k)) for k in METRIC_KEYS}})
        else:
            evals.append({"step": step, "eval_loss": _finite(data.get("eval_loss"))})
    return {"total": len(train), "points": downsample(train, target), "eval": evals}


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
    path = Path(job.run_dir or run_dir_of(settings, job.id)) / LOG_FILE
    # Marked event lines are skipped or shortened, so read more raw lines than asked for.
    return list(_readable(_tail_lines(path, n * 4)))[-n:]


def logs(session: Session, *, settings: Settings, actor: User, job_id: int, tail: int) -> list[str]:
    return log_tail(settings, get_job(session, actor=actor, job_id=job_id), tail)


def event_json(event: JobEvent) -> dict[str, Any]:
    return {"seq": event.seq, "type": event.type, "ts": event.ts, **json.loads(json.dumps(event.data))}
