"""Reading jobs: the list, the queue board, stored events and the metric curve. Who may read what is
`services.jobs.access`'s; logs, checkpoints and artifacts are `services.jobs.outputs`'.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.models import ACTIVE, Job, JobEvent, JobStatus, ModelVersion, RegisteredModel, User
from loraforge.services.accounts.users import usernames
from loraforge.services.jobs import metric_store
from loraforge.services.jobs.access import STAFF, get_job
from loraforge.services.platform import ownership
from loraforge.services.platform.event_hub import wire_time
from loraforge.settings import Settings


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
class JobContext:
    """What a job view shows beyond its row: the owner's username and the model version the job
    produced (a succeeded training or merge job), read for a whole page at once."""

    owners: dict[int, str]
    produced: dict[int, dict[str, Any]]  # job id → {model_id, model_name, version_id, version_number}


def context(session: Session, jobs: Sequence[Job]) -> JobContext:
    """Two queries for any number of jobs (the produced versions only for succeeded ones)."""
    done = [j.id for j in jobs if j.status == JobStatus.succeeded.value]
    produced: dict[int, dict[str, Any]] = {}
    if done:
        rows = session.execute(
            select(ModelVersion.source_job_id, ModelVersion.id, ModelVersion.number, RegisteredModel.id,
                   RegisteredModel.name)
            .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
            .where(ModelVersion.source_job_id.in_(done))
            .order_by(ModelVersion.id.desc())
        )  # fmt: skip
        # Newest first, so that should a job have made more than one version, its first one wins.
        for job_id, version_id, number, model_id, model_name in rows:
            ref = {
                "model_id": model_id,
                "model_name": model_name,
                "version_id": version_id,
                "version_number": number,
            }
            produced[job_id or 0] = ref  # never 0: the query asked for these jobs (the column is nullable)
    return JobContext(owners=usernames(session, {j.owner_id for j in jobs}), produced=produced)


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


# ---- events and metrics --------------------------------------------------------------------------


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


# An absolute path in an event (a checkpoint's `path`, a log line naming a file): a "/" that starts a
# word, then at least two segments. URLs (`https://h/p`), ratios (`it/s`) and fractions do not match.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"()\[\]{},;:]+/)+[^\s/'\"()\[\]{},;:]*")


def _shown_path(path: str, run_marker: str) -> str:
    """A path as users may see it: relative to the run directory, else only its last name.

    Where the server keeps its data (data_dir, caches, the install) is not the caller's business;
    inside the run directory (`<data_dir>/runs/<id>/`, invariant 5) the relative path is what the
    files and checkpoint routes take.
    """
    at = path.find(run_marker)
    if at >= 0:
        return path[at + len(run_marker) :].lstrip("/") or "."
    if path.rstrip("/").endswith(run_marker.rstrip("/")):
        return "."
    return path.rstrip("/").rsplit("/", 1)[-1] or "."


def _relative(value: Any, run_marker: str) -> Any:
    if isinstance(value, str):
        return _ABSOLUTE_PATH.sub(lambda m: _shown_path(m.group(), run_marker), value)
    if isinstance(value, dict):
        return {k: _relative(v, run_marker) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v, run_marker) for v in value]
    return value


def public_event(job_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """An engine event's data (or a job's error) as users see it: every absolute path relative to the
    job's run directory, or only its last name when it lies elsewhere. Stored events keep the real
    paths (`files.artifacts` reads them); everything that leaves the API goes through here."""
    shown: dict[str, Any] = _relative(data, f"/runs/{job_id}/")
    return shown


def shown_event(job_id: int, event: dict[str, Any]) -> dict[str, Any]:
    """A just-stored event (`{seq, type, ts, ...}`) as subscribers see it: like `event_json`."""
    return {**public_event(job_id, event), "ts": wire_time(float(event.get("ts") or 0.0))}


def event_json(event: JobEvent) -> dict[str, Any]:
    """A stored event as GET /api/jobs/{id}/events and the WebSocket replay show it."""
    data = public_event(event.job_id, json.loads(json.dumps(event.data)))
    # The engine and `job_events` keep Unix seconds (cheap to write and compare; /v1 wants them);
    # the API shows every time outside /v1 as ISO 8601.
    return {"seq": event.seq, "type": event.type, "ts": wire_time(event.ts), **data}
