"""Evaluations: models × one test set × metrics × generation parameters, and one run per model.

Each run's work is a job (`spec.stage == "evaluation"`) that the scheduler queues and the executors
launch like training; its per-sample results live in the job's run directory, its totals are copied
into `EvaluationRun.results` when the job succeeds. A run whose `cache_key` matches a succeeded run of
the same owner reuses that run's job instead of generating again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from loraforge.db.base import Base, UTCDateTime, utcnow


class Evaluation(Base):
    """One evaluation; private to its owner unless `shared` (then read-only for every user)."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_owner_created", "owner_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), default=None, index=True
    )
    dataset_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="SET NULL"), default=None
    )
    # Which rows of the version are the test set: "all", or "test"/"train" of its preprocessing split.
    split: Mapped[str] = mapped_column(String(16), default="all", server_default="all")
    metrics: Mapped[list[str]] = mapped_column(JSON, default=list)
    generation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # max_new_tokens, temperature...
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # regex, schema, n_shot, max_samples
    judge: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # {model, mode, prompt}
    shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The before/after flow: the training job whose success created this evaluation.
    source_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), default=None, index=True
    )
    # Pairwise judging (A vs B in both orders) runs as one more job once every model's run succeeded.
    judge_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    judge_results: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EvaluationRun(Base):
    """One model of an evaluation: what it is, the job that scores it, and its totals once done."""

    __tablename__ = "evaluation_runs"
    __table_args__ = (
        UniqueConstraint("evaluation_id", "position"),
        Index("ix_evaluation_runs_cache", "cache_key", "owner_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # order in the evaluation; 0 is the default baseline
    # The name as /v1 uses it, pinned for registered models (`<name>@v<number>`).
    model_name: Mapped[str] = mapped_column(String(300))
    model_kind: Mapped[str] = mapped_column(String(16))  # demo | registered | provider
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), default=None, index=True
    )
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("providers.id", ondelete="SET NULL"), default=None
    )
    # sha256 over (model identity, dataset version + split, generation parameters, metrics and options).
    cache_key: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), default=None, index=True
    )
    cached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # reused a job
    results: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # {metrics, speed, test_set}
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
