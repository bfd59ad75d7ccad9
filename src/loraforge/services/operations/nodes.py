"""Nodes: the server's own host (kind `local`), Ray nodes (kind `ray`, kept by `operations.ray_nodes`)
and their telemetry samples as they arrive.

`record_sample` is the one way a reading enters the database, whoever took it (the operations loop for
the local host, the Ray sync for an agent's file): it cleans the reading to the stored shape, moves
`last_seen_at` and recomputes the status through `node_status.refresh`.
"""

from __future__ import annotations

import math
import socket
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ACTIVE, Job, Node, NodeSample, Role, User
from loraforge.errors import NotFound
from loraforge.executors import node_sampler
from loraforge.services.operations import node_status
from loraforge.services.platform import ownership
from loraforge.settings import Settings
from loraforge.settings_ops import OperationsSettings

LOCAL_KIND = "local"
LOCAL_EXTERNAL_ID = "local"
# record_sample's default for "not reporting" when the caller has no settings at hand; the loop
# refreshes every node with the configured `node_lost_seconds` on each tick anyway.
DEFAULT_LOST_AFTER_S = float(OperationsSettings.model_fields["node_lost_seconds"].default)

_SAMPLE_NUMBERS = (
    "cpu_percent",
    "memory_used_bytes",
    "memory_total_bytes",
    "disk_free_bytes",
    "disk_total_bytes",
)
_GPU_NUMBERS = ("utilization", "memory_used_bytes", "memory_total_bytes", "temperature_c", "power_w")
_INT_FIELDS = frozenset({"memory_used_bytes", "memory_total_bytes", "disk_free_bytes", "disk_total_bytes"})
_MAX_GPUS = 64
_MAX_THROTTLE = 16


def _number(value: Any, *, integer: bool) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or number < 0:
        return None
    return int(number) if integer else round(number, 2)


def clean_sample(data: dict[str, Any]) -> dict[str, Any]:
    """The reading reduced to the stored shape (see `NodeSample.data`): known keys only, numbers that are
    finite and not negative (else None), at most 64 GPUs. A Ray agent's file is written by another
    process: whatever it holds must not reach the pages or /metrics as anything but these fields."""
    out: dict[str, Any] = {key: _number(data.get(key), integer=key in _INT_FIELDS) for key in _SAMPLE_NUMBERS}
    gpus: list[dict[str, Any]] = []
    raw_gpus = data.get("gpus")
    for raw in raw_gpus[:_MAX_GPUS] if isinstance(raw_gpus, list) else []:
        if not isinstance(raw, dict) or _number(raw.get("index"), integer=True) is None:
            continue
        gpu: dict[str, Any] = {"index": int(raw["index"])}
        name = raw.get("name")
        gpu["name"] = name[:200] if isinstance(name, str) else None
        for key in _GPU_NUMBERS:
            gpu[key] = _number(raw.get(key), integer=key in _INT_FIELDS)
        throttle = raw.get("throttle")
        gpu["throttle"] = (
            [str(t)[:64] for t in throttle[:_MAX_THROTTLE] if isinstance(t, str)]
            if isinstance(throttle, list)
            else []
        )
        gpus.append(gpu)
    out["gpus"] = gpus
    return out


def _local_name() -> str:
    return (socket.gethostname() or "localhost")[:200]


def ensure_local_node(session: Session, settings: Settings, *, info: dict[str, Any] | None = None) -> Node:
    """The node row of the server's own host, created on first use (name: the host name). `info`
    (`node_sampler.static_info`) replaces the stored facts when it differs; without it a new row reads
    them itself. Two server processes starting together may both insert: the loser reads the winner's."""
    stmt = select(Node).where(Node.kind == LOCAL_KIND, Node.external_id == LOCAL_EXTERNAL_ID)
    node = session.scalar(stmt)
    if node is None:
        facts = info if info is not None else node_sampler.static_info(settings.data_dir)
        node = Node(name=_local_name(), kind=LOCAL_KIND, external_id=LOCAL_EXTERNAL_ID, info=facts, health=[])
        try:
            with session.begin_nested():
                session.add(node)
        except IntegrityError:
            found = session.scalar(stmt)
            if found is None:
                raise
            node = found
        return node
    if info is not None and node.info != info:
        node.info = info
    name = _local_name()
    if node.name != name:
        node.name = name
    return node


def get_node(session: Session, node_id: int) -> Node:
    node = session.get(Node, node_id)
    if node is None:
        raise NotFound("node not found", code="node_not_found")
    return node


def list_nodes(session: Session) -> list[Node]:
    """Every node: the local host first, then by name."""
    nodes = session.scalars(select(Node)).all()
    return sorted(nodes, key=lambda n: (n.kind != LOCAL_KIND, n.name.lower(), n.id))


def record_sample(
    session: Session,
    node: Node,
    data: dict[str, Any],
    ts: datetime | None = None,
    *,
    lost_after_s: float = DEFAULT_LOST_AFTER_S,
) -> NodeSample | None:
    """Store one reading of `node` taken at `ts` (default now), move `last_seen_at` and refresh the
    node's status; the caller commits. A reading not newer than `last_seen_at` is the one already stored
    (an agent's file read twice): nothing is stored and None comes back."""
    ts = ts or utcnow()
    if node.last_seen_at is not None and ts <= node.last_seen_at:
        return None
    sample = NodeSample(node_id=node.id, ts=ts, resolution=0, data=clean_sample(data))
    session.add(sample)
    node.last_seen_at = ts
    node_status.refresh(session, node, lost_after_s=lost_after_s)
    return sample


def refresh_all(session: Session, settings: Settings, *, now: datetime | None = None) -> None:
    """Recompute every node's status: a node whose readings stopped turns `lost` without a new sample."""
    now = now or utcnow()
    for node in session.scalars(select(Node)).all():
        node_status.refresh(session, node, lost_after_s=settings.node_lost_seconds, now=now)


def latest_samples(session: Session, node_ids: list[int] | None = None) -> dict[int, NodeSample]:
    """Each node's newest sample by time, in ONE query that reads one index entry per node (a correlated
    `ORDER BY ts DESC LIMIT 1` on (node_id, ts)), never the history."""
    newest = (
        select(NodeSample.id)
        .where(NodeSample.node_id == Node.id)
        .order_by(NodeSample.ts.desc())
        .limit(1)
        .correlate(Node)
        .scalar_subquery()
    )
    stmt = select(NodeSample).join(Node, NodeSample.id == newest)
    if node_ids is not None:
        stmt = stmt.where(Node.id.in_(node_ids))
    return {s.node_id: s for s in session.scalars(stmt).all()}


def jobs_on(session: Session, actor: User, node_ids: list[int]) -> dict[int, list[Job]]:
    """Active jobs per node, only those `actor` may read (the ownership policy: staff see all)."""
    if not node_ids:
        return {}
    stmt = (
        select(Job)
        .where(Job.node_id.in_(node_ids), Job.status.in_([s.value for s in ACTIVE]))
        .order_by(Job.id)
    )
    scope = ownership.owner_scope(actor, staff_may=ownership.STAFF)
    if scope is not None:
        stmt = stmt.where(Job.owner_id == scope)
    out: dict[int, list[Job]] = {}
    for job in session.scalars(stmt).all():
        if job.node_id is not None:
            out.setdefault(job.node_id, []).append(job)
    return out


def is_staff(actor: User) -> bool:
    return not actor.disabled and actor.role_enum in (Role.admin, Role.operator)
