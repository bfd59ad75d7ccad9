"""Ray nodes in the `nodes` table (kind `ray`, keyed by Ray's node id), kept by the operations loop
when the executor is Ray (`sync`, once per telemetry interval).

- Ray's state API lists the cluster's nodes (with a timeout): each becomes or updates a row (name,
  address, CPUs, GPUs, labels). Ray's own GPU count is what placement goes by (`info.gpus` has that
  many entries: NVML's facts where the agent reported them, else bare indices).
- Liveness comes from the telemetry agent (`executors/ray_telemetry.py`, submitted here as one Ray job
  and resubmitted when it is gone): an ALIVE node's newest report is recorded through
  `nodes.record_sample`, which moves `last_seen_at`. A node Ray reports DEAD is marked lost at once
  (`last_seen_at` cleared; its last report is no longer read). Ray unreachable: nothing is written,
  and the loop's refresh turns the silent nodes lost after `node_lost_seconds`.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import Node
from loraforge.executors import ray_telemetry
from loraforge.executors.ray import RayExecutor, RayUnavailable
from loraforge.services.operations import node_status, nodes
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.operations")

KIND = "ray"
_MAX_LABELS = 64

_clients: dict[str, RayExecutor] = {}  # per Ray address: its Jobs API client and back-off
_clients_lock = threading.Lock()
_last_problem: dict[str, str] = {}  # per step: the last warning logged (a down Ray is said once)


def _warn(step: str, problem: str | None) -> None:
    """Log a problem once while it lasts (the loop retries every few seconds), and its end."""
    previous = _last_problem.get(step)
    if problem is None:
        if previous is not None:
            logger.info("%s works again", step)
            _last_problem.pop(step, None)
        return
    if problem != previous:
        logger.warning("%s: %s", step, problem)
        _last_problem[step] = problem


def telemetry_dir(settings: Settings) -> Path:
    """Where the agent's reports land: under the data directory, which every Ray node shares."""
    return settings.data_dir / "telemetry" / "ray"


def _client(settings: Settings) -> RayExecutor:
    address = settings.ray_address.strip().rstrip("/")
    with _clients_lock:
        client = _clients.get(address)
        if client is None:
            client = _clients[address] = RayExecutor(settings)
        return client


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _gpus(reported: Any, count: int) -> list[dict[str, Any]]:
    """`count` GPUs (Ray's number), with NVML's facts where the agent reported the same index."""
    facts = {
        g["index"]: g
        for g in (reported if isinstance(reported, list) else [])
        if isinstance(g, dict) and isinstance(g.get("index"), int)
    }
    out = []
    for index in range(count):
        fact = facts.get(index, {})
        name = fact.get("name")
        slowdown = fact.get("slowdown_temperature_c")
        out.append({
            "index": index,
            "name": name[:200] if isinstance(name, str) else None,
            "memory_total_bytes": _int(fact.get("memory_total_bytes")),
            "slowdown_temperature_c": float(slowdown) if isinstance(slowdown, int | float) else None,
        })  # fmt: skip
    return out


def node_info(
    entry: dict[str, Any], report: dict[str, Any] | None, *, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`Node.info` of a Ray node from Ray's listing and the agent's report; without a report (the agent
    is starting again) the facts it gave before stay."""
    resources = _dict(entry.get("resources_total"))
    facts = _dict(report.get("info")) if report is not None else _dict(previous)
    labels = _dict(entry.get("labels"))
    note = report.get("gpu_note") if report is not None else _dict(previous).get("gpu_note")
    return {
        "cpus": _int(resources.get("CPU")) or _int(facts.get("cpus")),
        "memory_total_bytes": _int(facts.get("memory_total_bytes")),
        "disk_total_bytes": _int(facts.get("disk_total_bytes")),
        "gpus": _gpus(facts.get("gpus"), _int(resources.get("GPU")) or 0),
        "labels": {str(k)[:200]: str(v)[:200] for k, v in list(labels.items())[:_MAX_LABELS]},
        "gpu_note": note[:300] if isinstance(note, str) else None,
        "is_head": bool(entry.get("is_head_node")),
    }


def _row(session: Session, rows: dict[str, Node], node_id: str, name: str) -> Node:
    node = rows.get(node_id)
    if node is not None:
        return node
    node = Node(name=name, kind=KIND, external_id=node_id, info={}, health=[])
    try:
        with session.begin_nested():  # another server may insert the same node first
            session.add(node)
    except IntegrityError:
        found = session.scalar(select(Node).where(Node.kind == KIND, Node.external_id == node_id))
        if found is None:
            raise
        node = found
    rows[node_id] = node
    return node


def _report_time(report: dict[str, Any], now: datetime, lost_after_s: float) -> datetime | None:
    """When the report was taken, if recent enough to say the node is alive (clocks ahead: now)."""
    taken = datetime.fromtimestamp(float(report["ts"]), UTC)
    if now - taken > timedelta(seconds=lost_after_s):
        return None
    return min(taken, now)


def sync(session: Session, settings: Settings, *, now: datetime | None = None) -> None:
    """Bring the `ray` rows up to date with the cluster and record the agent's newest reports; the
    caller commits. Keeps the agent running. Ray unreachable: logged, nothing changes."""
    if not settings.ray_address.strip():
        return
    now = now or utcnow()
    client = _client(settings)
    try:
        listed = ray_telemetry.list_nodes(client.address)
    except RayUnavailable as exc:
        _warn("Ray node sync", str(exc))
        return
    _warn("Ray node sync", None)
    out = telemetry_dir(settings)
    lost_after = settings.node_lost_seconds
    rows = {n.external_id: n for n in session.scalars(select(Node).where(Node.kind == KIND))}
    alive = 0
    for entry in listed:
        node_id = entry.get("node_id")
        if not ray_telemetry.valid_node_id(node_id):
            continue
        host = str(entry.get("node_name") or entry.get("node_ip") or "ray")[:150]
        node = _row(session, rows, node_id, f"{host}-{node_id[:8]}")
        address = entry.get("node_ip")
        node.address = str(address)[:255] if address else node.address
        if entry.get("state") != "ALIVE":
            node.last_seen_at = None  # dead to Ray: lost now, whatever its last report said
            node_status.refresh(session, node, lost_after_s=lost_after, now=now)
            continue
        alive += 1
        report = ray_telemetry.read_report(out, node_id)
        info = node_info(entry, report, previous=node.info or {})
        if node.info != info:
            node.info = info
        taken = _report_time(report, now, lost_after) if report is not None else None
        sample = report.get("sample") if report is not None else None
        if taken is not None and isinstance(sample, dict):
            nodes.record_sample(session, node, sample, taken, lost_after_s=lost_after)
        node_status.refresh(session, node, lost_after_s=lost_after, now=now)
    if alive:
        try:
            ray_telemetry.ensure_agent(
                client, out, interval_s=settings.telemetry_interval_seconds, data_dir=settings.data_dir
            )
            _warn("the Ray telemetry agent", None)
        except RayUnavailable as exc:
            _warn("the Ray telemetry agent", str(exc))
