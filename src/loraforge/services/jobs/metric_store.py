"""Fast training curves: a per-job numeric file next to the database, read with numpy.

`job_events` stays the source of truth; this is an index of its metric and eval events that can be
read without parsing a million JSON documents. `<data_dir>/job_metrics/<job_id>.bin` (path from the
id; outside the run directory, so retention never removes a curve) holds one row of `COLUMNS`
little-endian float64 per event (NaN = no value), appended in seq order.

`sync()` appends the metric/eval events whose seq is above the file's last row: the scheduler calls
it right after storing events, `read()` calls it before reading (a missing, truncated or lagging file
catches up from `job_events`, so the file can always be deleted and is rebuilt on the next read).
Appends hold an exclusive `flock` on the file and re-check the last seq under it, so the scheduler
thread and a request (or two servers) never append the same event twice.

A resumed run continues the seq numbering, and may repeat steps after its checkpoint (a run that
failed at step 50 and resumes from checkpoint-40 logs 41..50 again): the reader keeps, per step, the
row with the highest seq, so the curve shows what the final attempt did.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import JobEvent
from loraforge.settings import Settings

METRIC_KEYS = ("loss", "lr", "grad_norm", "epoch", "tokens_per_s", "progress", "eta_s", "elapsed_s")
COLUMNS = ("seq", "step", "kind", *METRIC_KEYS, "eval_loss")
_COL = {name: i for i, name in enumerate(COLUMNS)}
_WIDTH = len(COLUMNS)
_ROW_BYTES = 8 * _WIDTH
_KIND = {"metric": 0.0, "eval": 1.0}
_BATCH = 20_000  # events per query while catching up

FloatArray = npt.NDArray[np.float64]
logger = logging.getLogger("loraforge.metric_store")


def path_of(settings: Settings, job_id: int) -> Path:
    return settings.data_dir / "job_metrics" / f"{int(job_id)}.bin"


def delete(settings: Settings, job_id: int) -> None:
    path_of(settings, job_id).unlink(missing_ok=True)


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return math.nan


def _row(seq: int, kind: str, data: dict[str, Any]) -> list[float] | None:
    step = data.get("step")
    if not isinstance(step, int) or isinstance(step, bool):
        return None
    row = [float(seq), float(step), _KIND[kind]]
    if kind == "metric":
        row += [_number(data.get(k)) for k in METRIC_KEYS] + [math.nan]
    else:
        row += [math.nan] * len(METRIC_KEYS) + [_number(data.get("eval_loss"))]
    return row


def _last_seq(fh: Any) -> int:
    """The seq of the file's last whole row (0 when empty); a torn last row is cut off first."""
    size = os.fstat(fh.fileno()).st_size
    whole = size - size % _ROW_BYTES
    if whole != size:
        fh.truncate(whole)
    if whole == 0:
        return 0
    fh.seek(whole - _ROW_BYTES)
    return int(np.frombuffer(fh.read(_ROW_BYTES), dtype="<f8")[0])


def sync(settings: Settings, session: Session, job_id: int) -> int:
    """Append the job's stored metric/eval events that the file lacks; return how many rows were added.
    Sees what `session` sees (the scheduler's flushed rows before its commit, too)."""
    path = path_of(settings, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    added = 0
    with path.open("a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            last = _last_seq(fh)
            while True:
                rows = session.execute(
                    select(JobEvent.seq, JobEvent.type, JobEvent.data)
                    .where(JobEvent.job_id == job_id, JobEvent.seq > last, JobEvent.type.in_(list(_KIND)))
                    .order_by(JobEvent.seq)
                    .limit(_BATCH)
                ).all()
                if not rows:
                    break
                values = [r for seq, kind, data in rows if (r := _row(seq, kind, data or {})) is not None]
                if values:
                    fh.seek(0, os.SEEK_END)
                    fh.write(np.asarray(values, dtype="<f8").tobytes())
                    added += len(values)
                last = int(rows[-1][0])
                if len(rows) < _BATCH:
                    break
            fh.flush()
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return added


def append_rows(settings: Settings, job_id: int, rows: list[tuple[int, str, dict[str, Any]]]) -> None:
    """Append (seq, type, data) events directly, skipping those at or below the file's last seq
    (bulk loads such as the benchmark; the scheduler uses `sync`)."""
    path = path_of(settings, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            last = _last_seq(fh)
            values = [
                r for seq, kind, data in rows
                if seq > last and kind in _KIND and (r := _row(seq, kind, data)) is not None
            ]  # fmt: skip
            if values:
                fh.seek(0, os.SEEK_END)
                fh.write(np.asarray(values, dtype="<f8").tobytes())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _load(path: Path) -> FloatArray:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return np.empty((0, _WIDTH), dtype="<f8")
    rows = size // _ROW_BYTES
    if rows == 0:
        return np.empty((0, _WIDTH), dtype="<f8")
    # Mapped, not read: only the step, loss and kind columns of every row are touched (and whole rows
    # for the ~2000 points kept). A torn last row (a writer mid-append) is simply not mapped.
    data: FloatArray = np.memmap(path, dtype="<f8", mode="r", shape=(rows, _WIDTH))
    return data


def _curve(rows: FloatArray, at: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Of the rows `at`, the row indices of one curve in step order, one per step: the one with the
    highest seq (a resumed run's repeat of a step wins)."""
    step = rows[at, _COL["step"]]
    if step.size < 2 or bool(np.all(step[1:] > step[:-1])):
        return at  # the usual case: appended in step order, nothing repeated
    order = np.lexsort((rows[at, _COL["seq"]], step))
    ordered = step[order]
    keep = np.empty(ordered.size, dtype=bool)
    keep[-1] = True
    keep[:-1] = ordered[1:] != ordered[:-1]
    return at[order[keep]]


def downsample_indices(loss: FloatArray, target: int) -> npt.NDArray[np.int64]:
    """Indices to keep, ascending: the first and last, and per bucket of the inner points the lowest
    and highest loss (spikes and the best value survive); a bucket without any loss keeps its first
    point. The vectorised twin of `services.jobs.reads.downsample` (same buckets, same picks, ties to the
    earliest point): the buckets become the rows of one (buckets x width) copy, then argmin/argmax."""
    n = int(loss.size)
    if target <= 0 or n <= target:
        return np.arange(n, dtype=np.int64)
    buckets = max(1, (target - 2) // 2)
    size = (n - 2) / buckets
    starts = (np.arange(buckets) * size).astype(np.int64) + 1
    counts = (np.arange(1, buckets + 1) * size).astype(np.int64) + 1 - starts
    starts, counts = starts[counts > 0], counts[counts > 0]
    width = int(counts.max())
    # Row b = bucket b, plus the first point of the next bucket where b is one shorter than `width`
    # (bucket sizes differ by at most one); those extra cells are masked below.
    grid = sliding_window_view(np.asarray(loss, dtype=np.float64), width)[starts]
    bad = np.isnan(grid)
    if bool((counts < width).any()):
        bad |= np.arange(width)[None, :] >= counts[:, None]
    if bool(bad.any()):
        low = np.where(bad, np.inf, grid)
        high = np.where(bad, -np.inf, grid)
    else:
        low = high = grid
    has_value = ~bad.all(axis=1)
    chosen = [
        np.array([0, n - 1], dtype=np.int64),
        (starts + low.argmin(axis=1))[has_value],
        (starts + high.argmax(axis=1))[has_value],
        starts[~has_value],
    ]
    return np.unique(np.concatenate(chosen)).astype(np.int64)


def _value(x: float) -> float | None:
    return None if math.isnan(x) else x


def read(settings: Settings, session: Session, job_id: int, target: int) -> dict[str, Any]:
    """`{total, points, eval}` as `GET /api/jobs/{id}/metrics` returns it (catching the file up first)."""
    sync(settings, session, job_id)
    rows = _load(path_of(settings, job_id))
    kind = rows[:, _COL["kind"]]
    # Only step and loss of every row are touched; whole rows are gathered for the kept points only.
    train_at = _curve(rows, np.flatnonzero(kind == 0.0))
    evals = rows[_curve(rows, np.flatnonzero(kind == 1.0))]
    keep = downsample_indices(rows[train_at, _COL["loss"]], target)
    picked = rows[train_at[keep]]
    columns = [(_COL[k], k) for k in METRIC_KEYS]
    step, eval_loss = _COL["step"], _COL["eval_loss"]
    points = [{"step": int(r[step]), **{name: _value(r[i]) for i, name in columns}} for r in picked.tolist()]
    eval_points = [{"step": int(r[step]), "eval_loss": _value(r[eval_loss])} for r in evals.tolist()]
    return {"total": int(train_at.size), "points": points, "eval": eval_points}


def on_events_stored(settings: Settings, session: Session, job_id: int, stored: list[dict[str, Any]]) -> None:
    """The scheduler's hook after it flushed new events (`stored`: dicts with `type`): catch the
    file up when a metric or eval event is among them. Never fails the watch: the file is an index,
    and `read()` rebuilds whatever a failed append left out."""
    if not any(e.get("type") in _KIND for e in stored):
        return
    try:
        sync(settings, session, job_id)
    except OSError:
        logger.exception("appending metrics of job %s failed; the next read rebuilds them", job_id)
