"""Jobs (the queue is this table), their events and saved job templates."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from loraforge.db.base import Base, UTCDateTime, utcnow


class JobStatus(StrEnum):
    """A job's status. It changes only through `loraforge.services.jobs.states.transition`."""

    draft = "draft"
    queued = "queued"
    starting = "starting"
    running = "running"
    stopping = "stopping"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    # A stop the user asked for has finished: the engine saved a checkpoint (or had no step to save)
    # and exited. Final like failed and cancelled, and resumable from the latest checkpoint.
    stopped = "stopped"


JOB_STATUS_VALUES = tuple(status.value for status in JobStatus)
FINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.stopped}
)
# Final states a job can leave again: resume puts it back in the queue (from a checkpoint).
RESUMABLE: frozenset[JobStatus] = frozenset({JobStatus.failed, JobStatus.cancelled, JobStatus.stopped})
# A process may exist in these.
ACTIVE: frozenset[JobStatus] = frozenset({JobStatus.starting, JobStatus.running, JobStatus.stopping})
PENDING_OR_ACTIVE: frozenset[JobStatus] = ACTIVE | {JobStatus.queued}


class Job(Base):
    """A training job: its spec, the dataset version it pins, and where its engine process is.

    `status` changes only through `loraforge.services.jobs.states.transition`. The run directory is
    `<data_dir>/runs/<id>/` (kept in `run_dir` once known, so a restarted server finds the run).
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN {JOB_STATUS_VALUES!r}", name="status_valid"),
        Index("ix_jobs_queue", "status", "priority", "queued_at"),
        # GET /api/jobs is newest first (everyone's for staff, one owner's for researchers).
        Index("ix_jobs_created", "created_at", "id"),
        Index("ix_jobs_owner_created", "owner_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # The spec as the user wrote it (dataset = a LoRAForge dataset id); engine_spec = what the engine got.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    engine_spec: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), default=None, index=True
    )
    dataset_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="SET NULL"), default=None
    )
    executor: Mapped[str] = mapped_column(String(16), default="local")
    run_dir: Mapped[str | None] = mapped_column(Text, default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    pid_started_at: Mapped[float | None] = mapped_column(Float, default=None)
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    progress: Mapped[float | None] = mapped_column(Float, default=None)
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    stop_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Retention: a pinned job's files are never removed automatically; files_removed_at says they were.
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    files_removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Executors other than local identify a run by their own id (Ray: the submission id).
    external_id: Mapped[str | None] = mapped_column(String(128), default=None)
    devices: Mapped[list[int] | None] = mapped_column(JSON, default=None)  # GPU indices handed out
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # +1 per resume
    resume_from: Mapped[str | None] = mapped_column(String(200), default=None)  # checkpoint folder name
    # Set for jobs created through /v1/fine_tuning/jobs: suffix, metadata, training/validation file ids,
    # method and the hyperparameters as resolved (what the OpenAI job object reports back).
    fine_tuning: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Where it runs or last ran (`nodes.id`), and nodes it must not be placed on again (drain now,
    # migrate): the scheduler honours both on the next admission. No foreign key: nodes are never
    # deleted (a lost one stays listed), and adding one would rebuild `jobs` on SQLite.
    node_id: Mapped[int | None] = mapped_column(Integer, default=None)
    excluded_nodes: Mapped[list[int] | None] = mapped_column(JSON, default=None)
    # Set by a migration or a "drain now": once the stop has ended (`stopped`), the job is put back in
    # the queue at once, from its latest checkpoint, on another node.
    requeue_on_stop: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class JobEvent(Base):
    """One engine event of a job, with the engine's per-run sequence number."""

    __tablename__ = "job_events"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    ts: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class JobTemplate(Base):
    """A saved job spec: private to its owner or shared with everyone (read-only for others)."""

    __tablename__ = "job_templates"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
