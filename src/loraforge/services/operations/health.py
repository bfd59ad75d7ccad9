"""The health rules, run by the operations loop after every telemetry round (`evaluate`).

Per node, from its newest reading and its static facts: a GPU at or above the temperature threshold
(the operator's, else the GPU's own NVML slowdown temperature, else 85 °C), a GPU slowed down for
thermal or power reasons, a GPU's memory at or above the share, less free disk than the threshold
(also a failing health check: the node is `unhealthy` and gets no new jobs until it recovers), the
node not reporting (`lost`), and too many jobs failed on it within the window. Per job: a running job
whose engine has said nothing but resource readings for too long (hung), stopped as well when the
hung action is `stop`.

Every finding is a `Condition` with a key. A key without an active alert raises one; an active alert
whose condition no longer holds is resolved automatically. A node that is not reporting keeps the
alerts read from its readings as they are: a stale reading proves nothing either way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import Alert, AlertStatus, Job, JobEvent, JobStatus, Node, NodeSample, NodeStatus
from loraforge.executors import make_executor
from loraforge.executors.base import Executor
from loraforge.services.jobs import lifecycle
from loraforge.services.operations import alert_delivery, alert_rules, alerts, node_status
from loraforge.services.operations import nodes as nodes_mod
from loraforge.services.operations.alert_rules import Rules
from loraforge.services.operations.alerts import Condition
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.alerts")

DEFAULT_SLOWDOWN_C = 85.0
DISK_CHECK = "disk_free"
# NVML clock-event reasons that mean heat or power is holding the GPU back. `sw_power_cap` is left
# out: a busy GPU sits at its power limit by design, and an alert on every full-load run is noise.
THROTTLE_ALERTING = frozenset(
    {"hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"}
)
# Rules read from a node's newest reading: left alone while the node does not report.
READING_RULES = frozenset({"gpu_temperature", "gpu_throttle", "gpu_memory", "disk_free"})
RULES = READING_RULES | {"node_lost", "node_failures", "job_hung"}
_GB = 1_000_000_000

_executors: dict[str, Executor] = {}


@dataclass
class Evaluation:
    raised: list[str] = field(default_factory=list)  # keys of new alerts
    resolved: list[str] = field(default_factory=list)  # keys resolved automatically
    stopped: list[int] = field(default_factory=list)  # hung jobs stopped


def _gpu_conditions(node: Node, gpus: list[dict[str, Any]], rules: Rules) -> list[Condition]:
    slowdown = {g.get("index"): g.get("slowdown_temperature_c") for g in (node.info or {}).get("gpus") or []}
    found: list[Condition] = []
    for gpu in gpus:
        index = gpu.get("index")
        label = f"GPU {index}" + (f" ({gpu['name']})" if gpu.get("name") else "")
        temperature = gpu.get("temperature_c")
        limit = float(rules.gpu_temperature_c or slowdown.get(index) or DEFAULT_SLOWDOWN_C)
        if isinstance(temperature, int | float) and temperature >= limit:
            found.append(
                Condition(
                    rule="gpu_temperature",
                    key=f"gpu_temperature:{node.id}:{index}",
                    severity="warning",
                    title=f"{node.name}: GPU {index} at {temperature:.0f} °C",
                    message=f"{label} on {node.name} is at {temperature:.0f} °C (alert at {limit:.0f} °C).",
                    node_id=node.id,
                    data={"gpu": index, "temperature_c": temperature, "threshold_c": limit},
                )
            )
        reasons = sorted(THROTTLE_ALERTING.intersection(gpu.get("throttle") or []))
        if reasons:
            found.append(
                Condition(
                    rule="gpu_throttle",
                    key=f"gpu_throttle:{node.id}:{index}",
                    severity="warning",
                    title=f"{node.name}: GPU {index} is throttled",
                    message=f"{label} on {node.name} is slowed down: {', '.join(reasons)}.",
                    node_id=node.id,
                    data={"gpu": index, "reasons": reasons},
                )
            )
        used, total = gpu.get("memory_used_bytes"), gpu.get("memory_total_bytes")
        if isinstance(used, int | float) and isinstance(total, int | float) and total > 0:
            percent = 100.0 * used / total
            if percent >= rules.gpu_memory_percent:
                found.append(
                    Condition(
                        rule="gpu_memory",
                        key=f"gpu_memory:{node.id}:{index}",
                        severity="warning",
                        title=f"{node.name}: GPU {index} memory {percent:.0f} % full",
                        message=(
                            f"{label} on {node.name} uses {percent:.1f} % of its memory "
                            f"(alert at {rules.gpu_memory_percent:g} %)."
                        ),
                        node_id=node.id,
                        data={
                            "gpu": index,
                            "percent": round(percent, 1),
                            "threshold_percent": rules.gpu_memory_percent,
                        },
                    )
                )
    return found


def _disk_condition(node: Node, data: dict[str, Any], rules: Rules) -> Condition | None:
    free = data.get("disk_free_bytes")
    threshold = rules.disk_free_gb * _GB
    if not isinstance(free, int | float) or free >= threshold:
        return None
    return Condition(
        rule="disk_free",
        key=f"disk_free:{node.id}",
        severity="critical",
        title=f"{node.name}: only {free / _GB:.1f} GB free",
        message=(
            f"The data directory's disk on {node.name} has {free / _GB:.2f} GB free, less than "
            f"{rules.disk_free_gb:,.10g} GB: no new jobs are placed there until space is freed."
        ),
        node_id=node.id,
        data={"free_bytes": int(free), "threshold_gb": rules.disk_free_gb},
    )


def _set_check(node: Node, check: str, message: str | None) -> None:
    """Add or remove one failing health check (an entry already there keeps its first message)."""
    current = list(node.health or [])
    present = any(h.get("check") == check for h in current)
    if message is not None and not present:
        node.health = [*current, {"check": check, "message": message}]
    elif message is None and present:
        node.health = [h for h in current if h.get("check") != check]


def _node_conditions(
    session: Session, settings: Settings, node: Node, sample: NodeSample | None, rules: Rules, now: datetime
) -> list[Condition] | None:
    """The node's findings from its newest reading; None when it does not report (nothing is known)."""
    node_status.refresh(session, node, lost_after_s=settings.node_lost_seconds, now=now)
    if node.status == NodeStatus.lost.value:
        seen = node.last_seen_at.isoformat() if node.last_seen_at else "never"
        return [
            Condition(
                rule="node_lost",
                key=f"node_lost:{node.id}",
                severity="critical",
                title=f"{node.name} stopped reporting",
                message=f"No telemetry from {node.name} for {settings.node_lost_seconds:g} s (last: {seen}).",
                node_id=node.id,
                data={"last_seen_at": seen},
            )
        ]
    if sample is None:
        return None
    data = sample.data or {}
    found = _gpu_conditions(node, list(data.get("gpus") or []), rules)
    disk = _disk_condition(node, data, rules)
    _set_check(node, DISK_CHECK, disk.message if disk is not None else None)
    node_status.refresh(session, node, lost_after_s=settings.node_lost_seconds, now=now)
    return found + ([disk] if disk is not None else [])


def _failure_conditions(
    session: Session, nodes: dict[int, Node], rules: Rules, now: datetime
) -> list[Condition]:
    since = now - timedelta(hours=rules.node_failures_window_hours)
    rows = session.execute(
        select(Job.node_id, func.count())
        .where(Job.node_id.is_not(None), Job.status == JobStatus.failed.value, Job.finished_at >= since)
        .group_by(Job.node_id)
    ).all()
    found: list[Condition] = []
    for node_id, count in rows:
        node = nodes.get(node_id) if node_id is not None else None
        if node is None or count < rules.node_failures:
            continue
        window = f"{rules.node_failures_window_hours:g} h"
        found.append(
            Condition(
                rule="node_failures",
                key=f"node_failures:{node.id}",
                severity="warning",
                title=f"{node.name}: {count} jobs failed in {window}",
                message=(
                    f"{count} jobs failed on {node.name} within {window} (alert at "
                    f"{rules.node_failures}); look for a common cause on that machine."
                ),
                node_id=node.id,
                data={"failed": count, "window_hours": rules.node_failures_window_hours},
            )
        )
    return found


def _last_engine_word(session: Session, job: Job) -> float | None:
    """When the engine last said something other than a resource reading (Unix seconds), or when
    this attempt started: an attempt that has said nothing yet counts from its start."""
    query = select(JobEvent.ts).where(JobEvent.job_id == job.id, JobEvent.type != "resource")
    last = session.scalar(query.order_by(JobEvent.seq.desc()).limit(1))
    started = job.started_at.timestamp() if job.started_at is not None else None
    known = [t for t in (last, started) if t is not None]
    return max(known) if known else None


def _hung_conditions(session: Session, rules: Rules, now: datetime) -> list[Condition]:
    found: list[Condition] = []
    for job in session.scalars(select(Job).where(Job.status == JobStatus.running.value).order_by(Job.id)):
        last = _last_engine_word(session, job)
        if last is None:
            continue
        silent = (now.timestamp() - last) / 60.0
        if silent < rules.job_hung_minutes:
            continue
        action = " It is being stopped." if rules.job_hung_action == "stop" else ""
        found.append(
            Condition(
                rule="job_hung",
                key=f"job_hung:{job.id}",
                severity="warning",
                title=f"Job “{job.name}” (#{job.id}) looks hung",
                message=(
                    f"Job “{job.name}” (#{job.id}) is running but its engine has reported nothing for "
                    f"{silent:.1f} minutes (alert at {rules.job_hung_minutes:g}).{action}"
                ),
                node_id=job.node_id,
                job_id=job.id,
                data={
                    "last_event_at": datetime.fromtimestamp(last, tz=now.tzinfo).isoformat(),
                    "silent_minutes": round(silent, 2),
                    "action": rules.job_hung_action,
                },
            )
        )
    return found


def _executor(settings: Settings) -> Executor:
    """An executor to stop a hung job with when the caller has none at hand: signalling a process
    (or asking Ray to stop a submission) needs nothing the scheduler's own executor holds."""
    key = f"{settings.executor}:{settings.ray_address}"
    if key not in _executors:
        _executors[key] = make_executor(settings)
    return _executors[key]


def _recently_pending(session: Session, now: datetime) -> list[int]:
    """Resolved alerts of the last day whose mail or webhook is still pending (a restart cut it off)."""
    query = select(Alert).where(
        Alert.status == AlertStatus.resolved.value, Alert.resolved_at >= now - timedelta(days=1)
    )
    return [a.id for a in session.scalars(query) if alert_delivery.pending(a)]


def evaluate(
    session: Session, settings: Settings, now: datetime | None = None, *, executor: Executor | None = None
) -> Evaluation:
    """Run every rule once: raise, resolve, update node health, stop hung jobs (action `stop`);
    commits. Mail and webhooks go out afterwards from the delivery worker."""
    now = now or utcnow()
    result = Evaluation()
    with alert_delivery.LOCK:
        rules = alert_rules.effective(session, settings)
        nodes = {node.id: node for node in session.scalars(select(Node).order_by(Node.id))}
        firing: dict[str, Condition] = {}
        silent_nodes: set[int] = set()
        latest = nodes_mod.latest_samples(session)  # one query for every node's newest reading
        for node in nodes.values():
            found = _node_conditions(session, settings, node, latest.get(node.id), rules, now)
            if found is None or node.status == NodeStatus.lost.value:
                silent_nodes.add(node.id)
            firing.update((c.key, c) for c in found or [])
        found_elsewhere = _failure_conditions(session, nodes, rules, now) + _hung_conditions(
            session, rules, now
        )
        firing.update((c.key, c) for c in found_elsewhere)
        active = alerts.active_by_key(session)
        touched: list[int] = []
        for key, condition in firing.items():
            if key not in active:
                touched.append(alerts.raise_alert(session, settings, condition, now=now).id)
                result.raised.append(key)
        for key, alert in active.items():
            if alert.rule not in RULES or key in firing:
                continue
            if alert.rule in READING_RULES and alert.node_id in silent_nodes:
                continue
            alerts.resolve_automatically(session, settings, alert, now=now)
            touched.append(alert.id)
            result.resolved.append(key)
        touched += [a.id for a in active.values() if a.id not in touched and alert_delivery.pending(a)]
        touched += _recently_pending(session, now)
        session.commit()
    if rules.job_hung_action == "stop":
        for condition in firing.values():
            job = session.get(Job, condition.job_id) if condition.rule == "job_hung" else None
            if job is None:
                continue
            reason = f"hung: no engine event for {rules.job_hung_minutes:g} minutes"
            if lifecycle.stop_by_system(
                session, executor=executor or _executor(settings), job=job, reason=reason
            ):
                result.stopped.append(job.id)
                logger.warning("stopped hung job %s", job.id)
    if result.raised or result.resolved:
        logger.info("alerts raised: %s; resolved: %s", result.raised, result.resolved)
    if touched:
        alert_delivery.dispatch(alert_delivery.factory_of(session), settings, dict.fromkeys(touched))
    return result
