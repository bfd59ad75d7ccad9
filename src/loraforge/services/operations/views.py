"""Nodes as the API shows them (`NodePublic`, `NodeDetail` in api/schemas/operations.py): the row, its
static facts, its newest reading and the active jobs on it that the caller may read.

Plain dicts, validated by the route's response model; the drain routes (`api/routes/node_actions.py`)
answer with `node_public` too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import SCHEDULABLE, Job, Node, NodeSample, NodeStatus, User
from loraforge.services.operations import nodes, telemetry

MAX_HISTORY_HOURS = 168


def _static_gpus(info: dict[str, Any]) -> list[dict[str, Any]]:
    gpus = info.get("gpus")
    return [
        {
            "index": g["index"],
            "name": g.get("name"),
            "memory_total_bytes": g.get("memory_total_bytes"),
            "slowdown_temperature_c": g.get("slowdown_temperature_c"),
        }
        for g in (gpus if isinstance(gpus, list) else [])
        if isinstance(g, dict) and isinstance(g.get("index"), int)
    ]


def _latest(sample: NodeSample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    data = sample.data or {}
    return {
        "ts": sample.ts,
        "cpu_percent": data.get("cpu_percent"),
        "memory_used_bytes": data.get("memory_used_bytes"),
        "memory_total_bytes": data.get("memory_total_bytes"),
        "disk_free_bytes": data.get("disk_free_bytes"),
        "disk_total_bytes": data.get("disk_total_bytes"),
        "gpus": [g for g in data.get("gpus") or [] if isinstance(g, dict)],
    }


def _health(node: Node) -> list[dict[str, Any]]:
    return [
        {"check": str(h.get("check", "")), "message": str(h.get("message", ""))}
        for h in node.health or []
        if isinstance(h, dict)
    ]


def node_public(node: Node, latest: NodeSample | None, jobs: list[Job]) -> dict[str, Any]:
    """One node in the `NodePublic` shape."""
    info = node.info or {}
    labels = info.get("labels")
    note = info.get("gpu_note")
    return {
        "id": node.id,
        "name": node.name,
        "kind": node.kind,
        "address": node.address,
        "status": node.status,
        "drain_mode": node.drain_mode,
        "drained_at": node.drained_at,
        "health": _health(node),
        "last_seen_at": node.last_seen_at,
        "schedulable": node.status in {s.value for s in SCHEDULABLE},
        "cpus": info.get("cpus"),
        "memory_total_bytes": info.get("memory_total_bytes"),
        "disk_total_bytes": info.get("disk_total_bytes"),
        "labels": {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        "gpus": _static_gpus(info),
        "gpu_note": note if isinstance(note, str) else None,
        "latest": _latest(latest),
        "jobs": [{"id": j.id, "name": j.name, "status": j.status, "owner_id": j.owner_id} for j in jobs],
    }


def list_public(session: Session, actor: User) -> list[dict[str, Any]]:
    """Every node in the `NodePublic` shape, in three queries whatever the number of nodes."""
    rows = nodes.list_nodes(session)
    ids = [n.id for n in rows]
    latest = nodes.latest_samples(session, ids)
    jobs = nodes.jobs_on(session, actor, ids)
    return [node_public(n, latest.get(n.id), jobs.get(n.id, [])) for n in rows]


def one_public(session: Session, actor: User, node: Node) -> dict[str, Any]:
    latest = nodes.latest_samples(session, [node.id]).get(node.id)
    return node_public(node, latest, nodes.jobs_on(session, actor, [node.id]).get(node.id, []))


def detail(
    session: Session, actor: User, node_id: int, *, hours: float = 1.0, now: datetime | None = None
) -> dict[str, Any]:
    """`NodeDetail`: the node plus its readings of the last `hours` (1..168), at most 500 points."""
    node = nodes.get_node(session, node_id)
    hours = min(max(hours, 0.0), MAX_HISTORY_HOURS)
    since = (now or utcnow()) - timedelta(hours=hours)
    return {**one_public(session, actor, node), "history": telemetry.history(session, node.id, since)}


def is_up(node: Node) -> bool:
    """Reporting, whatever the drain or health: what `loraforge_node_up` exports."""
    return node.status != NodeStatus.lost.value
