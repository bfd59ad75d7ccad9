"""Usage accounting: per scheduler tick, bring `job_usage` up to date (one row per attempt of a job).

A row is opened when an attempt is seen active, refreshed while it runs (at most every
`REFRESH_SECONDS`: quotas and reports may lag that much) and completed once the job is final. What it
holds, from the job row and the engine's events of that attempt (events at or after the attempt's
start, and before the next attempt's, as `job_events.ts`):

- wall_seconds: start to end (to now while it runs);
- cpu_seconds: the engine's `resource` events integrated over time. Each sample's `cpu_pct` is the
  process tree's CPU since the previous sample (psutil), the samples are evenly spaced, and each
  carries the mean over the attempt so far (`cpu_avg_pct`), so the integral is that mean times the
  span the samples cover (first sample minus one interval, to the last): two rows read, not thousands;
- gpu_count: the devices admission handed out (local executor), else the spec's demand (Ray);
  gpu_seconds = gpu_count x wall;
- peak_memory_bytes: the highest resident memory of the process tree (`peak_rss_mb`, a running
  maximum the engine keeps per attempt) or of the trainer itself (metric events);
- tokens: the trainer's `tokens_total` at the attempt's end, less what the checkpoint it resumed from
  had already counted (the trainer restores its count with the checkpoint);
- cost: at the prices in force when the row was last written (`services.usage.prices`).

Which jobs are looked at: active ones, every open row, and jobs finished in the last minutes without a
row for their attempt (the first sync of a process looks back to the start of last month, so a restart
or an upgrade loses nothing). Below jobs: reads the `jobs` and `job_events` tables directly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ACTIVE, FINAL, Job, JobEvent, JobUsage
from loraforge.services.usage.prices import Prices
from loraforge.services.usage.prices import current as current_prices
from loraforge.services.usage.quotas import month_of, spec_gpus
from loraforge.settings import Settings

REFRESH_SECONDS = 15.0
RECENT_WINDOW = timedelta(minutes=10)  # how far back each sync looks for finished jobs without a row
DEFAULT_RESOURCE_INTERVAL = 5.0  # the engine's `resource_interval_seconds` default
_MB = 1024 * 1024
_REPORTS = ("metric", "progress")
_CHUNK = 500

_lock = threading.Lock()
_open: dict[str, set[int]] = {}  # database URL -> ids of jobs with a row not yet completed


@dataclass(frozen=True)
class Measures:
    cpu_seconds: float = 0.0
    peak_memory_bytes: int = 0
    tokens: int = 0
    last_ts: float | None = None  # the attempt's latest event


def sync(session: Session, *, settings: Settings, now: datetime | None = None) -> None:
    """Bring the usage rows of active and just-finished jobs up to date; commits."""
    now = now or utcnow()
    bind = session.get_bind()
    key = str(bind.engine.url)
    with _lock:
        first = key not in _open
        tracked = set(_open.get(key, ()))
    # Every sync also picks up jobs that finished lately without a row for their attempt: another
    # server process may have run them, or a database shared by several processes was reset. The first
    # sync of a process looks back to the start of last month (a restart or an upgrade loses nothing).
    since = _start_of_last_month(now) if first else now - RECENT_WINDOW
    tracked |= _catch_up(session, since)
    active = set(session.scalars(select(Job.id).where(Job.status.in_([s.value for s in ACTIVE]))))
    candidates = sorted(tracked | active)
    prices = current_prices(session, settings)
    still_open: set[int] = set()
    found: set[int] = set()
    for start in range(0, len(candidates), _CHUNK):
        for job in session.scalars(select(Job).where(Job.id.in_(candidates[start : start + _CHUNK]))):
            found.add(job.id)
            if _sync_job(session, settings, job, now, prices):
                still_open.add(job.id)
    if first or set(candidates) - found:
        _close_orphans(session)  # rows of jobs deleted before their row was completed
    session.commit()
    with _lock:
        _open[key] = still_open


def _start_of_last_month(now: datetime) -> datetime:
    return (now.replace(day=1) - timedelta(days=1)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _catch_up(session: Session, since: datetime) -> set[int]:
    """Jobs with an open row, and jobs that finished since `since` without a row for their latest
    attempt (they ran while no sync of this process was watching)."""
    open_rows = set(
        session.scalars(
            select(JobUsage.job_id).where(JobUsage.finished_at.is_(None), JobUsage.job_id.is_not(None))
        )
    )
    has_row = exists().where(and_(JobUsage.job_id == Job.id, JobUsage.attempt == Job.attempt))
    missing = session.scalars(
        select(Job.id).where(
            Job.status.in_([s.value for s in FINAL]),
            Job.started_at.is_not(None),
            Job.finished_at >= since,
            ~has_row,
        )
    )
    return {i for i in open_rows if i is not None} | set(missing)


def _close_orphans(session: Session) -> None:
    for row in session.scalars(
        select(JobUsage).where(JobUsage.job_id.is_(None), JobUsage.finished_at.is_(None))
    ):
        row.finished_at = _after(row.started_at, row.wall_seconds) if row.started_at else utcnow()


def _after(start: datetime, seconds: float) -> datetime:
    return start + timedelta(seconds=max(0.0, seconds))


def _sync_job(session: Session, settings: Settings, job: Job, now: datetime, prices: Prices) -> bool:
    """Update the job's rows; True while its current attempt's row stays open."""
    rows = {row.attempt: row for row in session.scalars(select(JobUsage).where(JobUsage.job_id == job.id))}
    for attempt, row in rows.items():
        if attempt < job.attempt and row.finished_at is None:
            _complete_earlier(session, job, row, prices)
    if job.started_at is None:  # the current attempt has not started (queued again, or never ran)
        return False
    final = job.status in {s.value for s in FINAL}
    existing = rows.get(job.attempt)
    if existing is not None and existing.finished_at is not None:
        return False
    if existing is not None and not final and (now - existing.updated_at).total_seconds() < REFRESH_SECONDS:
        return True
    row = existing or JobUsage(
        job_id=job.id, attempt=job.attempt, owner_id=job.owner_id, month=month_of(job.started_at)
    )
    if existing is None:
        session.add(row)
    end = (job.finished_at or now) if final else now
    measures = _measure(session, job, start=job.started_at, end=None)
    # The local executor hands out device indices; Ray places GPUs itself and only got the count.
    gpu_count = len(job.devices or []) if job.executor == "local" else spec_gpus(job.spec or {}, settings)
    _fill(row, start=job.started_at, end=end, measures=measures, gpu_count=gpu_count, prices=prices)
    row.node_id = job.node_id
    row.finished_at = end if final else None
    row.updated_at = now
    return not final


def _complete_earlier(session: Session, job: Job, row: JobUsage, prices: Prices) -> None:
    """An earlier attempt's row still open (the job ended and was resumed between two syncs): its
    events are those before the job went back to the queue; it ended with the last of them."""
    if row.started_at is None:
        row.finished_at = utcnow()
        return
    until = job.queued_at if job.queued_at and job.queued_at > row.started_at else None
    measures = _measure(session, job, start=row.started_at, end=until, attempt=row.attempt)
    known_end = _after(row.started_at, row.wall_seconds)
    end = known_end
    if measures.last_ts is not None:
        end = max(known_end, datetime.fromtimestamp(measures.last_ts, tz=row.started_at.tzinfo))
    _fill(row, start=row.started_at, end=end, measures=measures, gpu_count=row.gpu_count, prices=prices)
    row.finished_at = end


def _fill(
    row: JobUsage, *, start: datetime, end: datetime, measures: Measures, gpu_count: int, prices: Prices
) -> None:
    wall = max(0.0, (end - start).total_seconds())
    row.started_at = start
    row.wall_seconds = wall
    row.cpu_seconds = measures.cpu_seconds
    row.gpu_count = gpu_count
    row.gpu_seconds = gpu_count * wall
    row.peak_memory_bytes = max(row.peak_memory_bytes or 0, measures.peak_memory_bytes)
    row.tokens = measures.tokens
    row.cost = prices.cost(gpu_seconds=row.gpu_seconds, cpu_seconds=row.cpu_seconds)


def _events(
    session: Session,
    job_id: int,
    types: tuple[str, ...] | None,
    start: float,
    end: float | None,
    *,
    newest: bool,
    limit: int = 1,
) -> list[tuple[float, dict[str, Any]]]:
    query = select(JobEvent.ts, JobEvent.data).where(JobEvent.job_id == job_id, JobEvent.ts >= start)
    if types is not None:
        query = query.where(JobEvent.type.in_(types))
    if end is not None:
        query = query.where(JobEvent.ts < end)
    query = query.order_by(JobEvent.seq.desc() if newest else JobEvent.seq.asc()).limit(limit)
    return [(float(ts), data or {}) for ts, data in session.execute(query).all()]


def _number(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _measure(
    session: Session, job: Job, *, start: datetime, end: datetime | None, attempt: int | None = None
) -> Measures:
    """CPU-seconds, peak memory and tokens of the attempt whose events fall in [start, end)."""
    start_ts, end_ts = start.timestamp(), end.timestamp() if end is not None else None
    interval = _number(job.engine_spec or {}, "resource_interval_seconds") or DEFAULT_RESOURCE_INTERVAL
    cpu_seconds, peak_mb = 0.0, 0.0
    last = _events(session, job.id, ("resource",), start_ts, end_ts, newest=True)
    if last:
        first = _events(session, job.id, ("resource",), start_ts, end_ts, newest=False)
        last_ts, data = last[0]
        mean = _number(data, "cpu_avg_pct")
        mean = mean if mean is not None else (_number(data, "cpu_pct") or 0.0)
        span = last_ts - first[0][0] + interval
        cpu_seconds = max(0.0, mean) / 100.0 * span
        peak_mb = _number(data, "peak_rss_mb") or _number(data, "rss_mb") or 0.0
    reports = _events(session, job.id, _REPORTS, start_ts, end_ts, newest=True, limit=5)
    tokens = 0
    if reports:
        peak_mb = max(peak_mb, *(_number(d, "peak_rss_mb") or 0.0 for _, d in reports))
        tokens = int(max(_number(d, "tokens_total") or 0.0 for _, d in reports))
        if (attempt or job.attempt) > 1 and tokens:
            tokens = max(0, tokens - _resumed_tokens(session, job.id, start_ts, end_ts))
    newest = _events(session, job.id, None, start_ts, end_ts, newest=True)
    return Measures(
        cpu_seconds=round(cpu_seconds, 3),
        peak_memory_bytes=int(peak_mb * _MB),
        tokens=tokens,
        last_ts=newest[0][0] if newest else None,
    )


def _resumed_tokens(session: Session, job_id: int, start_ts: float, end_ts: float | None) -> int:
    """Tokens the trainer had counted at the checkpoint this attempt resumed from: the count the
    earlier attempts reported at the last step before this attempt's first one."""
    first = _events(session, job_id, _REPORTS, start_ts, end_ts, newest=False)
    step = _number(first[0][1], "step") if first else None
    if step is None:
        return 0
    earlier = session.scalar(
        select(func.max(JobEvent.data["tokens_total"].as_integer())).where(
            JobEvent.job_id == job_id,
            JobEvent.type.in_(_REPORTS),
            JobEvent.ts < start_ts,
            JobEvent.data["step"].as_integer() < int(step),
        )
    )
    return int(earlier or 0)
