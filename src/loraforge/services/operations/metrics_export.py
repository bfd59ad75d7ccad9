"""Prometheus gauges of nodes, GPUs, open alerts and the queue for `GET /metrics`, read from the database
at scrape time (every server process answers the same, whichever took the readings).

Per scrape: the node rows, the newest reading of each node (one query that reads one index entry per
node, `nodes.latest_samples`, never the history), open alerts by severity and jobs by status. A node's
gauges are labelled `node` (its name; `name#id` when two nodes share a name, so no series is
duplicated), a GPU's also `gpu` (the NVML index). A field a node could not read is left out, not
reported as 0. A database that cannot answer costs these gauges, never the HTTP metrics beside them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.models import Alert, AlertStatus, Job, JobStatus, Node
from loraforge.db.session import Database
from loraforge.services.operations import nodes, views

logger = logging.getLogger("loraforge.operations")

_NODE_GAUGES = (
    ("loraforge_node_cpu_percent", "cpu_percent", "System-wide CPU use of the node, 0..100."),
    (
        "loraforge_node_memory_used_bytes",
        "memory_used_bytes",
        "Memory in use on the node (total - available).",
    ),
    (
        "loraforge_node_disk_free_bytes",
        "disk_free_bytes",
        "Free bytes on the disk of the node's data directory.",
    ),
)
_GPU_GAUGES = (
    ("loraforge_gpu_utilization_percent", "utilization", "GPU busy share of the last NVML period, 0..100."),
    ("loraforge_gpu_memory_used_bytes", "memory_used_bytes", "GPU memory in use."),
    ("loraforge_gpu_temperature_celsius", "temperature_c", "GPU core temperature."),
    ("loraforge_gpu_power_watts", "power_w", "GPU power draw."),
)
# Waiting and active jobs; every one of these statuses is exported (0 included), so a dashboard's series
# never disappear. Finished jobs are history, not queue.
_QUEUE_STATUSES = tuple(
    s.value for s in (JobStatus.queued, JobStatus.starting, JobStatus.running, JobStatus.stopping)
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _labels(rows: list[Node]) -> dict[int, str]:
    counts = Counter(n.name for n in rows)
    return {n.id: (n.name if counts[n.name] == 1 else f"{n.name}#{n.id}") for n in rows}


def collect_from(session: Session) -> list[Metric]:
    rows = nodes.list_nodes(session)
    names = _labels(rows)
    latest = nodes.latest_samples(session, [n.id for n in rows])

    up = GaugeMetricFamily(
        "loraforge_node_up", "1 while the node reports telemetry, 0 when lost.", labels=["node"]
    )
    node_families = [GaugeMetricFamily(name, doc, labels=["node"]) for name, _key, doc in _NODE_GAUGES]
    gpu_families = [GaugeMetricFamily(name, doc, labels=["node", "gpu"]) for name, _key, doc in _GPU_GAUGES]
    for node in rows:
        label = names[node.id]
        up.add_metric([label], 1.0 if views.is_up(node) else 0.0)
        sample = latest.get(node.id)
        if sample is None:
            continue
        data = sample.data or {}
        for family, (_name, key, _doc) in zip(node_families, _NODE_GAUGES, strict=True):
            value = _number(data.get(key))
            if value is not None:
                family.add_metric([label], value)
        for gpu in data.get("gpus") or []:
            if not isinstance(gpu, dict) or not isinstance(gpu.get("index"), int):
                continue
            for family, (_name, key, _doc) in zip(gpu_families, _GPU_GAUGES, strict=True):
                value = _number(gpu.get(key))
                if value is not None:
                    family.add_metric([label, str(gpu["index"])], value)

    alerts = GaugeMetricFamily(
        "loraforge_alerts_open", "Alerts raised and not yet acknowledged or resolved.", labels=["severity"]
    )
    open_by_severity = {
        str(severity): int(count)
        for severity, count in session.execute(
            select(Alert.severity, func.count(Alert.id))
            .where(Alert.status == AlertStatus.open.value)
            .group_by(Alert.severity)
        )
    }
    for severity in sorted({"warning", "critical", *open_by_severity}):
        alerts.add_metric([severity], float(open_by_severity.get(severity, 0)))

    queue = GaugeMetricFamily(
        "loraforge_queue_jobs", "Jobs waiting in the queue or active, by status.", labels=["status"]
    )
    by_status = {
        str(status): int(count)
        for status, count in session.execute(
            select(Job.status, func.count(Job.id)).where(Job.status.in_(_QUEUE_STATUSES)).group_by(Job.status)
        )
    }
    for status in _QUEUE_STATUSES:
        queue.add_metric([status], float(by_status.get(status, 0)))
    return [up, *node_families, *gpu_families, alerts, queue]


class NodeCollector(Collector):
    """Registered on the app's own registry (`loraforge.app`)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[Metric]:
        try:
            with self.database.session() as session:
                families = collect_from(session)
        except Exception:
            logger.exception("node metrics could not be read")
            return iter(())
        return iter(families)
