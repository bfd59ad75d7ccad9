"""Operations: the machines that run engines (nodes), their telemetry, health alerts, per-job usage,
operator-editable settings and single-use account links (password reset, invitations)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loraforge.db.base import Base, UTCDateTime, utcnow


class NodeStatus(StrEnum):
    """ready: placed on. draining: no new jobs, running ones finish (or were stopped: drain now).
    drained: draining and nothing runs there any more. unhealthy: a health check fails (not placed on
    until it passes). lost: stopped reporting (Ray says dead, or no sample for a while)."""

    ready = "ready"
    draining = "draining"
    drained = "drained"
    unhealthy = "unhealthy"
    lost = "lost"


NODE_STATUS_VALUES = tuple(s.value for s in NodeStatus)
# Where the scheduler may place a new job.
SCHEDULABLE: frozenset[NodeStatus] = frozenset({NodeStatus.ready})


class Node(Base):
    """A machine that runs engine processes: the server's host (kind `local`), a Ray node (`ray`, keyed by
    Ray's node id) or, later, an SSH host. `draining` is the operator's wish and survives health changes:
    a drained node that recovers stays drained until undrained."""

    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("kind", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # local | ray | ssh
    external_id: Mapped[str] = mapped_column(String(128))  # local: "local"; ray: the Ray node id
    address: Mapped[str | None] = mapped_column(String(255), default=None)
    status: Mapped[str] = mapped_column(String(16), default=NodeStatus.ready.value)
    # The operator's drain: None, "finish" or "now". Kept apart from health so recovery never undrains.
    drain_mode: Mapped[str | None] = mapped_column(String(8), default=None)
    drained_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Failing health checks: [{"check": "disk_free", "message": "..."}]; empty when healthy.
    health: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Static facts: {"cpus", "memory_total_bytes", "disk_total_bytes",
    #   "gpus": [{index, name, memory_total_bytes, slowdown_temperature_c}], "labels": {...}}
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NodeSample(Base):
    """One telemetry reading of a node. `resolution` 0 = as sampled (kept 24 h); 60 = one-minute
    averages that replace older full-rate samples (kept `LORAFORGE_TELEMETRY_RETENTION_DAYS`)."""

    __tablename__ = "node_samples"
    __table_args__ = (Index("ix_node_samples_node_ts", "node_id", "ts"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolution: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # {"cpu_percent", "memory_used_bytes", "memory_total_bytes", "disk_free_bytes", "disk_total_bytes",
    #  "gpus": [{"index", "name", "utilization", "memory_used_bytes", "memory_total_bytes", "temperature_c",
    #            "power_w", "throttle": ["hw_slowdown", ...]}]}
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Alert(Base):
    """A health condition seen once and kept until it clears (resolved automatically) or a person
    resolves it. `key` identifies the condition (rule + node/GPU/job): while one alert of a key is not
    resolved, the same condition raises nothing new."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_key_status", "key", "status"),
        Index("ix_alerts_status_raised", "status", "raised_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16), default="warning")  # warning | critical
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.open.value)
    title: Mapped[str] = mapped_column(String(300))
    message: Mapped[str] = mapped_column(Text, default="")
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"), default=None)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    acknowledged_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # None with resolved_at set: the condition cleared by itself.
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    # Delivery by email and webhook: pending | sent | failed | none (nothing configured).
    delivery: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class JobUsage(Base):
    """What one attempt of a job used (a resumed job has one row per attempt). Filled in while it runs
    and completed when the attempt ends; `month` ('YYYY-MM', UTC, of the attempt's start) groups it."""

    __tablename__ = "job_usage"
    __table_args__ = (
        UniqueConstraint("job_id", "attempt"),
        Index("ix_job_usage_owner_month", "owner_id", "month"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Usage outlives the job: deleting a job keeps what it used (the month's totals must not shrink).
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7))
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"), default=None)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    wall_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_count: Mapped[int] = mapped_column(Integer, default=0)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # summed over the job's GPUs
    peak_memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float | None] = mapped_column(Float, default=None)  # only when prices are configured
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UserQuota(Base):
    """An admin's override of the quota defaults for one user (None: the default from settings)."""

    __tablename__ = "user_quotas"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    gpu_hours_per_month: Mapped[float | None] = mapped_column(Float, default=None)
    max_running_jobs: Mapped[int | None] = mapped_column(Integer, default=None)
    storage_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OpsSetting(Base):
    """Operator-editable settings stored in the database (alert thresholds, prices): `key` → JSON value.
    A key that is absent falls back to the environment's `LORAFORGE_*` default."""

    __tablename__ = "ops_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)


class AccountLink(Base):
    """A single-use, expiring link sent by email: `reset` (forgotten password) or `invite` (an admin
    invited the user, who sets a first password). Only the SHA-256 of the token is stored."""

    __tablename__ = "account_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ip: Mapped[str | None] = mapped_column(Text, default=None)
