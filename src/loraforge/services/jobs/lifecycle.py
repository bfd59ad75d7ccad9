"""Jobs: create (spec validated by the engine's schema, dataset version pinned), list, read, start,
stop, cancel, resume, clone (optionally with a spec patch), delete; priority and queue order; events,
metrics (`metric_store`), logs, checkpoints and artifacts (`job_files`). Status changes go through
`job_states`.

Access (`services.platform.ownership`): the owner; operators and admins may read, stop and cancel anyone's
job, download its files, and change priorities and the queue order (researchers may not); only the
owner starts, resumes, clones into their own drafts, or deletes.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.models import ACTIVE, FINAL, Job, JobEvent, JobStatus, User
from loraforge.engine.events import EVENTS_FILE, MARKER, parse_line, read_events_file
from loraforge.errors import Conflict, FieldIssue, Forbidden, InvalidInput, NotFound
from loraforge.executors.base import LOG_FILE, Executor, ProcessRef
from loraforge.services.jobs import files as job_files
from loraforge.services.jobs import gpu_fit as gpus
from loraforge.services.jobs import metric_store
from loraforge.services.jobs import specs as job_specs
from loraforge.services.jobs.states import transition
from loraforge.services.models import catalog as registry
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

STAFF = ownership.STAFF
PRIORITY_MIN, PRIORITY_MAX = -1000, 1000


def run_dir_of(settings: Settings, job_id: int) -> Path:
    return settings.runs_dir / str(int(job_id))


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
        executor=settings.executor,
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
    fine_tuning: dict[str, Any] | None = None,
) -> Job:
    """A new job (draft, or queued with `start`); `fine_tuning` = the /v1/fine_tuning request as resolved."""
    checked = job_specs.check_spec(session, actor=actor, spec=spec)
    gpus.check_fits_node(settings, checked.spec)
    job = _new_job(session, settings=settings, owner=actor, name=name, checked=checked)
    job.fine_tuning = fine_tuning
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
    conditions = []
    scope = ownership.owner_scope(actor, staff_may=STAFF)
    if scope is not None:
        conditions.append(Job.owner_id == scope)
    elif owner_id is not None:
        conditions.append(Job.owner_id == owner_id)
    if statuses:
        conditions.append(Job.status.in_(statuses))
    # A plain COUNT over the index (no subquery of full rows), then one page in index order
    # (ix_jobs_owner_created / ix_jobs_created, migration 0005): newest first = highest id first,
    # ids grow with created_at.
    total = session.scalar(select(func.count(Job.id)).where(*conditions)) or 0
    query = select(Job).where(*conditions).order_by(Job.created_at.desc(), Job.id.desc())
    rows = session.scalars(query.offset(offset).limit(limit))
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


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, a null removes the key, anything else
    replaces. `engine.failures` writes its suggested fixes in this form (`details.spec_patch`)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def clone_job(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    job_id: int,
    ip: str | None,
    spec_patch: dict[str, Any] | None = None,
    name: str | None = None,
) -> Job:
    """A new draft of the caller's with this job's spec (the same pinned dataset version), optionally
    changed by `spec_patch` (a JSON merge patch, e.g. the `spec_patch` of the job's error: "new job
    with the suggested fix"). The result is validated like a new job: a 422 names the field."""
    source = get_job(session, actor=actor, job_id=job_id)
    spec = merge_patch(dict(source.spec), spec_patch) if spec_patch else dict(source.spec)
    checked = job_specs.check_spec(session, actor=actor, spec=spec)
    gpus.check_fits_node(settings, checked.spec)
    name = name or f"{source.name} (copy)"[:200]
    job = _new_job(session, settings=settings, owner=actor, name=name, checked=checked)
    details: dict[str, Any] = {"name": name, "cloned_from": source.id}
    if spec_patch:
        details["spec_patch"] = spec_patch
    audit.record(
        session, action=AuditAction.job_created, actor=actor, target_type="job", target_id=job.id, ip=ip,
        details=details,
    )  # fmt: skip
    session.commit()
    return job


def resume_job(
    session: Session, *, settings: Settings, actor: User, job_id: int, checkpoint: str | None, ip: str | None
) -> Job:
    """Put a failed or cancelled job back in the queue to continue from one of its checkpoints
    (`checkpoint` = a folder name from the listing; None = the latest). The same job continues: the
    engine resumes the Trainer's global step, optimizer and RNG state, and keeps counting event seqs,
    so the curve and the event stream continue where they were. Owner only."""
    job = get_job(session, actor=actor, job_id=job_id, staff_may=frozenset())
    if JobStatus(job.status) not in (JobStatus.failed, JobStatus.cancelled):
        raise Conflict(f"a {job.status} job cannot be resumed", code="invalid_transition")
    run_dir = Path(job.run_dir or run_dir_of(settings, job.id))
    found = job_files.find_checkpoint(run_dir, checkpoint)
    if found is None:
        if checkpoint is not None:
            raise InvalidInput(
                f"job {job.id} has no checkpoint {checkpoint!r}",
                code="checkpoint_not_found",
                fields=[FieldIssue(field="checkpoint", message="not one of the job's checkpoints")],
            )
        raise Conflict("the job has no checkpoint to resume from", code="no_checkpoint")
    # Events the engine wrote after the job was finalized here (e.g. after an immediate cancel) were
    # never stored; skip past them so the resumed run's stream starts above them (no stale final event).
    file_seq = max((e.seq or 0 for e in read_events_file(run_dir / EVENTS_FILE)), default=0)
    transition(
        session, job, JobStatus.queued,
        pid=None, pid_started_at=None, external_id=None, exit_code=None, error=None, started_at=None,
        finished_at=None, stop_requested_at=None, devices=None, attempt=job.attempt + 1,
        resume_from=found.name, last_event_seq=max(job.last_event_seq, file_seq),
    )  # fmt: skip
    audit.record(
        session, action=AuditAction.job_resumed, actor=actor, target_type="job", target_id=job.id, ip=ip,
        details={"checkpoint": found.name, "step": found.step, "attempt": job.attempt},
    )  # fmt: skip
    session.commit()
    return job


# ---- priority and queue order (operators and admins) -------------------------------------------------


def set_priority(session: Session, *, actor: User, job_id: int, priority: int, ip: str | None) -> Job:
    """Change a queued or draft job's priority (higher is admitted first)."""
    ownership.ensure_role(actor, STAFF)
    job = get_job(session, actor=actor, job_id=job_id)
    if job.status not in (JobStatus.queued.value, JobStatus.draft.value):
        raise Conflict(f"a {job.status} job's priority cannot change", code="invalid_transition")
    previous = job.priority
    job.priority = priority
    audit.record(
        session, action=AuditAction.job_priority_changed, actor=actor, target_type="job", target_id=job.id,
        ip=ip, details={"from": previous, "to": priority},
    )  # fmt: skip
    session.commit()
    return job


def reorder_queue(session: Session, *, actor: User, job_ids: list[int], ip: str | None) -> None:
    """Reorder the given queued jobs among themselves; every other queued job keeps its place.

    The listed jobs occupy some positions ("slots") of the admission order (priority desc, queued_at,
    id). The first listed job moves into the earliest of those slots, the second into the next, and so
    on: each takes over its slot's priority and queued_at (queued_at nudged by a microsecond where two
    slots tie, so the new order is strict). So `[c, a]` on a queue `a, x, c` gives `c, x, a`.
    """
    ownership.ensure_role(actor, STAFF)
    issues = [
        FieldIssue(field=f"job_ids.{i}", message=f"job {job_id} is listed twice")
        for i, job_id in enumerate(job_ids)
        if job_id in job_ids[:i]
    ]
    if issues:
        raise InvalidInput("a job is listed twice", code="duplicate_job", fields=issues)
    rows = {
        job.id: job
        for job in session.scalars(select(Job).where(Job.id.in_(job_ids)).with_for_update())
    }  # fmt: skip
    not_queued = [
        FieldIssue(field=f"job_ids.{i}", message=f"job {job_id} is not queued")
        for i, job_id in enumerate(job_ids)
        if job_id not in rows or rows[job_id].status != JobStatus.queued.value
    ]
    if not_queued:
        raise InvalidInput(
            "only queued jobs can be reordered: " + ", ".join(i.message for i in not_queued),
            code="job_not_queued",
            fields=not_queued,
        )
    slots = sorted(rows.values(), key=lambda j: (-j.priority, j.queued_at or j.created_at, j.id))
    keys = [(j.priority, j.queued_at or j.created_at) for j in slots]
    previous: tuple[int, Any] | None = None
    for job_id, (priority, queued_at) in zip(job_ids, keys, strict=True):
        if previous is not None and previous[0] == priority and queued_at <= previous[1]:
            queued_at = previous[1] + timedelta(microseconds=1)
        rows[job_id].priority, rows[job_id].queued_at = priority, queued_at
        previous = (priority, queued_at)
    audit.record(
        session, action=AuditAction.queue_reordered, actor=actor, target_type="queue", ip=ip,
        details={"job_ids": job_ids},
    )  # fmt: skip
    session.commit()


def delete_job(session: Session, *, settings: Settings, actor: User, job_id: int, ip: str | None) -> None:
    job = get_job(session, actor=actor, job_id=job_id, staff_may=frozenset())
    if job.status != JobStatus.draft.value and JobStatus(job.status) not in FINAL:
        raise Conflict(f"a {job.status} job cannot be deleted; stop or cancel it first", code="job_active")
    if registry.job_output_needed(session, job_id=job.id):
        raise Conflict(
            "a registered model version uses this job's output; delete the model (with its files) first",
            code="job_output_in_use",
        )
    folder = run_dir_of(settings, job.id)
    audit.record(
        session, action=AuditAction.job_deleted, actor=actor, target_type="job", target_id=job.id, ip=ip,
        details={"name": job.name, "owner_id": job.owner_id, "status": job.status},
    )  # fmt: skip
    session.delete(job)
    session.commit()
    shutil.rmtree(folder, ignore_errors=True)
    metric_store.delete(settings, job_id)


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


def metrics(session: Session, *, settings: Settings, actor: User, job_id: int, target: int) -> dict[str, Any]:
    """`{total, points, eval}`: the curve from the job's metric file (`metric_store`), downsampled to
    about `target` points keeping each bucket's extremes."""
    get_job(session, actor=actor, job_id=job_id)
    return metric_store.read(settings, session, job_id, target)


def metrics_from_events(session: Session, *, job_id: int, target: int) -> dict[str, Any]:
    """The same from `job_events` JSON (slow; the reference `metric_store` is tested against)."""
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


# ---- files: logs, checkpoints, artifacts ------------------------------------------------------------------


def _run_dir(settings: Settings, job: Job) -> Path:
    return Path(job.run_dir or run_dir_of(settings, job.id))


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
    run_dir = _run_dir(settings, get_job(session, actor=actor, job_id=job_id))
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
    path = job_files.log_path(_run_dir(settings, job))
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
    found = job_files.checkpoints(_run_dir(settings, job))
    return [(c, dict(reported.get(c.step) or {})) for c in found]


def checkpoint_archive(
    session: Session, *, settings: Settings, actor: User, job_id: int, name: str
) -> tuple[Iterator[bytes], str]:
    """A streamed .tar.gz of one checkpoint (`name` looked up in the listing) and its file name."""
    job = get_job(session, actor=actor, job_id=job_id)
    found = job_files.find_checkpoint(_run_dir(settings, job), name)
    if found is None:
        raise NotFound(f"job {job.id} has no checkpoint {name!r}", code="checkpoint_not_found")
    arcname = f"job-{job.id}-{found.name}"
    return job_files.tar_gz_stream(found.path, arcname), f"{arcname}.tar.gz"


def artifacts(session: Session, *, settings: Settings, actor: User, job_id: int) -> list[job_files.Artifact]:
    """The job's outputs (adapter or full model with tokenizer, summary), from its artifact events
    and its output folder."""
    job = get_job(session, actor=actor, job_id=job_id)
    return job_files.artifacts(_run_dir(settings, job), _events_of(session, job.id, "artifact"))


def artifact_archive(
    session: Session, *, settings: Settings, actor: User, job_id: int, name: str
) -> tuple[Iterator[bytes], str]:
    job = get_job(session, actor=actor, job_id=job_id)
    listing = job_files.artifacts(_run_dir(settings, job), _events_of(session, job.id, "artifact"))
    found = next((a for a in listing if a.name == name), None)
    if found is None:
        raise NotFound(f"job {job.id} has no artifact {name!r}", code="artifact_not_found")
    arcname = f"job-{job.id}-{found.name}"
    return job_files.tar_gz_stream(found.path, arcname), f"{arcname}.tar.gz"
