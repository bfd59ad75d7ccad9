"""Node telemetry over time: the history a node page charts, and thinning that keeps the table small.

Samples arrive at full rate (`resolution` 0, one per `telemetry_interval_seconds`). After
`telemetry_full_rate_hours` they are replaced by one-minute averages (`resolution` 60), per node and per
GPU; after `telemetry_retention_days` every sample goes. With the defaults (5 s, 24 h, 7 days) a node
holds about 17 000 full-rate rows and 8 600 averages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from loraforge.db.models import Node, NodeSample
from loraforge.settings import Settings

AVERAGE_RESOLUTION = 60
# Thinning reads one node's readings this many minutes at a time (720 rows at the default 5 s): bounds
# one step's memory whatever the backlog.
_THIN_WINDOW_MINUTES = 60

_NODE_FIELDS = (
    "cpu_percent",
    "memory_used_bytes",
    "memory_total_bytes",
    "disk_free_bytes",
    "disk_total_bytes",
)
_GPU_FIELDS = ("utilization", "memory_used_bytes", "memory_total_bytes", "temperature_c", "power_w")
_INT_FIELDS = frozenset({"memory_used_bytes", "memory_total_bytes", "disk_free_bytes", "disk_total_bytes"})
# What a history point carries (the node page's charts); throttle reasons and names are left out.
_HISTORY_NODE = ("cpu_percent", "memory_used_bytes", "memory_total_bytes", "disk_free_bytes")


def _mean(values: Iterable[Any], *, integer: bool) -> float | int | None:
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numbers:
        return None
    value = math.fsum(numbers) / len(numbers)
    return round(value) if integer else round(value, 2)


def average(datas: list[dict[str, Any]]) -> dict[str, Any]:
    """The field-wise mean of readings (None-aware): node fields, and each GPU by its index. A GPU's
    throttle reasons are the union over the readings (a minute with one throttled reading was throttled),
    its name the last one known."""
    out: dict[str, Any] = {
        key: _mean((d.get(key) for d in datas), integer=key in _INT_FIELDS) for key in _NODE_FIELDS
    }
    per_gpu: dict[int, list[dict[str, Any]]] = {}
    for data in datas:
        for reading in data.get("gpus") or []:
            if isinstance(reading, dict) and isinstance(reading.get("index"), int):
                per_gpu.setdefault(reading["index"], []).append(reading)
    gpus: list[dict[str, Any]] = []
    for index in sorted(per_gpu):
        readings = per_gpu[index]
        gpu: dict[str, Any] = {"index": index}
        names = [g.get("name") for g in readings if isinstance(g.get("name"), str)]
        gpu["name"] = names[-1] if names else None
        for key in _GPU_FIELDS:
            gpu[key] = _mean((g.get(key) for g in readings), integer=key in _INT_FIELDS)
        reasons: list[str] = []
        for g in readings:
            for reason in g.get("throttle") or []:
                if isinstance(reason, str) and reason not in reasons:
                    reasons.append(reason)
        gpu["throttle"] = reasons
        gpus.append(gpu)
    out["gpus"] = gpus
    return out


def _point(ts: datetime, data: dict[str, Any]) -> dict[str, Any]:
    point: dict[str, Any] = {"ts": ts}
    for key in _HISTORY_NODE:
        point[key] = data.get(key)
    point["gpus"] = [
        {"index": g["index"], **{key: g.get(key) for key in _GPU_FIELDS}}
        for g in data.get("gpus") or []
        if isinstance(g, dict) and isinstance(g.get("index"), int)
    ]
    return point


def history(session: Session, node_id: int, since: datetime, max_points: int = 500) -> list[dict[str, Any]]:
    """Readings of one node from `since` on, oldest first, at most `max_points`: when there are more,
    consecutive readings are averaged into equal-count buckets (spikes shrink but never vanish, unlike
    picking every n-th reading). Each point: `{ts, cpu_percent, memory_used_bytes, memory_total_bytes,
    disk_free_bytes, gpus: [{index, utilization, memory_used_bytes, memory_total_bytes, temperature_c,
    power_w}]}`; a bucket's ts is its last reading's."""
    rows = session.execute(
        select(NodeSample.ts, NodeSample.data)
        .where(NodeSample.node_id == node_id, NodeSample.ts >= since)
        .order_by(NodeSample.ts, NodeSample.id)
    ).all()
    max_points = max(1, max_points)
    if len(rows) <= max_points:
        return [_point(ts, data or {}) for ts, data in rows]
    points: list[dict[str, Any]] = []
    for i in range(max_points):
        lo = i * len(rows) // max_points
        hi = (i + 1) * len(rows) // max_points
        bucket = rows[lo:hi]
        if bucket:
            points.append(_point(bucket[-1][0], average([data or {} for _ts, data in bucket])))
    return points


def _minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def _thin_node(session: Session, node_id: int, cutoff: datetime) -> tuple[int, int]:
    """Average one node's full-rate readings before `cutoff` (a minute boundary) into per-minute rows,
    a window of `_THIN_WINDOW_MINUTES` at a time (windows start on a minute, so no minute is ever split
    between two averages). Returns (readings replaced, averages written)."""
    replaced = written = 0
    full_rate = (NodeSample.node_id == node_id, NodeSample.resolution == 0)
    while True:
        first = session.scalar(select(func.min(NodeSample.ts)).where(*full_rate, NodeSample.ts < cutoff))
        if first is None:
            return replaced, written
        start = _minute(first)
        end = min(cutoff, start + timedelta(minutes=_THIN_WINDOW_MINUTES))
        rows = session.execute(
            select(NodeSample.id, NodeSample.ts, NodeSample.data)
            .where(*full_rate, NodeSample.ts >= start, NodeSample.ts < end)
            .order_by(NodeSample.ts, NodeSample.id)
        ).all()
        buckets: dict[datetime, list[tuple[int, dict[str, Any]]]] = {}
        for sample_id, ts, data in rows:
            buckets.setdefault(_minute(ts), []).append((sample_id, data or {}))
        ids: list[int] = []
        for minute, items in buckets.items():
            session.add(
                NodeSample(
                    node_id=node_id,
                    ts=minute,
                    resolution=AVERAGE_RESOLUTION,
                    data=average([data for _id, data in items]),
                )
            )
            ids.extend(sample_id for sample_id, _data in items)
        for at in range(0, len(ids), 500):  # bound the IN list (SQLite's variable limit)
            session.execute(delete(NodeSample).where(NodeSample.id.in_(ids[at : at + 500])))
        session.flush()
        replaced += len(ids)
        written += len(buckets)


def thin(session: Session, settings: Settings, now: datetime) -> dict[str, int]:
    """Replace full-rate readings older than `telemetry_full_rate_hours` with one-minute averages (per node
    and per GPU) and delete every reading older than `telemetry_retention_days`; the caller commits.
    Returns counts: `{"averaged", "written", "deleted"}`."""
    # Expired readings go first: averaging what is about to be deleted would be wasted work.
    expired = now - timedelta(days=settings.telemetry_retention_days)
    result = session.execute(delete(NodeSample).where(NodeSample.ts < expired))
    deleted = int(getattr(result, "rowcount", 0) or 0)
    cutoff = _minute(now - timedelta(hours=settings.telemetry_full_rate_hours))
    averaged = written = 0
    for node_id in session.scalars(select(Node.id)).all():
        replaced, added = _thin_node(session, node_id, cutoff)
        averaged += replaced
        written += added
    return {"averaged": averaged, "written": written, "deleted": deleted}
