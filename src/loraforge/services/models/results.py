"""Model versions made by jobs: a succeeded training job's output registered as a new fine-tuned
model (`ft:<base>:<suffix>:<job id>`) or as the next version of an existing one, with the final
metrics and the lineage (base, parent adapter, dataset) its spec names. No files are copied: the
version points at the job's `RUN_DIR/output`.

Contract used by others (keep this signature):
- `register_job_result(session, settings=, job=) -> ModelVersion | None` — called in the transaction that
  moves a training job to `succeeded`; returns the new version (None for jobs that produce no model).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobEvent, JobStatus, ModelVersion, RegisteredModel, User
from loraforge.errors import Conflict, FieldIssue, InvalidInput
from loraforge.services.models import files as model_files
from loraforge.services.models.catalog import get_model, record, safe_name
from loraforge.services.models.resolution import pinned_version
from loraforge.services.models.versions import job_output, new_version
from loraforge.services.platform import ownership
from loraforge.services.platform.archives import folder_size
from loraforge.services.platform.audit import AuditAction
from loraforge.services.platform.owner_names import NAME_MAX_LENGTH
from loraforge.settings import Settings

TRAINING_STAGES = ("sft", "pt", "dpo", "kto")


def _job_metrics(session: Session, folder: Path, job: Job) -> dict[str, Any]:
    """Final losses and steps: the engine's summary.json, else the job's last metric/eval events."""
    metrics: dict[str, Any] = {}
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}
    if isinstance(summary, dict):
        for key in (
            "final_train_loss",
            "train_loss",
            "final_eval_loss",
            "steps",
            "epochs",
            "tokens_trained",
            "runtime_s",
            "trainable_params",
            "total_params",
        ):
            if summary.get(key) is not None:
                metrics[key] = summary[key]
    if "final_train_loss" not in metrics:
        last = session.scalar(
            select(JobEvent)
            .where(JobEvent.job_id == job.id, JobEvent.type == "metric")
            .order_by(JobEvent.seq.desc())
        )
        if last is not None and isinstance(last.data, dict):
            if last.data.get("loss") is not None:
                metrics["final_train_loss"] = last.data["loss"]
            if last.data.get("step") is not None:
                metrics.setdefault("steps", last.data["step"])
    if "final_eval_loss" not in metrics:
        last_eval = session.scalar(
            select(JobEvent)
            .where(JobEvent.job_id == job.id, JobEvent.type == "eval")
            .order_by(JobEvent.seq.desc())
        )
        if (
            last_eval is not None
            and isinstance(last_eval.data, dict)
            and last_eval.data.get("eval_loss") is not None
        ):
            metrics["final_eval_loss"] = last_eval.data["eval_loss"]
    return metrics


def _lineage(session: Session, spec: dict[str, Any]) -> dict[str, Any]:
    """base_version_id / base_ref / parent_version_id of what a training spec produces, and the base's
    display name (for `ft:<base>:...`)."""
    out: dict[str, Any] = {"base_version_id": None, "base_ref": None, "parent_version_id": None}
    model_ref = spec.get("model_name_or_path")
    pinned = pinned_version(session, model_ref)
    if pinned is not None:
        model, version = pinned
        out["display"] = model.name
        if version.weights == "adapter":  # trained on top of an adapter: same base, it is the parent
            out.update(
                base_version_id=version.base_version_id,
                base_ref=version.base_ref,
                parent_version_id=version.id,
            )
        else:
            out["base_version_id"] = version.id
    else:
        ref = str(model_ref or "")
        out["base_ref"] = ref or None
        out["display"] = Path(ref).name if ref.startswith(("/", "~", ".")) else ref
    adapter = pinned_version(session, spec.get("adapter_name_or_path"))
    if adapter is not None:
        out["parent_version_id"] = adapter[1].id
    return out


def fine_tuned_name(base: str, suffix: str | None, job_id: int) -> str:
    tail = f":{safe_name(suffix or 'lf', keep_colon=False)[:64]}:{job_id}"
    head = safe_name(base, keep_colon=True)[: NAME_MAX_LENGTH - len("ft:") - len(tail)]
    return f"ft:{head}{tail}"


def _job_version(
    session: Session, model: RegisteredModel, *, job: Job, output: Path, weights: str, created_by: int
) -> ModelVersion:
    """A ready version of `model` whose files are the job's output (no copy), made current."""
    spec = job.spec or {}
    lineage = _lineage(session, spec)
    lineage.pop("display", None)
    version = new_version(
        session,
        model,
        weights=weights,
        status="ready",
        path=str(output),
        source_job_id=job.id,
        dataset_version_id=job.dataset_version_id,
        spec=dict(spec),
        metrics=_job_metrics(session, output, job),
        info=model_files.detect_info(output),
        size_bytes=folder_size(output),
        created_by=created_by,
        **lineage,
    )
    model.current_version_id = version.id
    return version


def register_job_result(session: Session, *, settings: Settings, job: Job) -> ModelVersion | None:
    """Called in the transaction that moves `job` to succeeded (no commit here)."""
    spec = job.spec or {}
    stage = spec.get("stage", "sft")
    if stage not in TRAINING_STAGES:
        return None
    existing = session.scalar(select(ModelVersion).where(ModelVersion.source_job_id == job.id).limit(1))
    if existing is not None:  # the same final event seen twice (another server, a restart)
        return existing
    output = job_output(settings, job)
    weights = model_files.weights_kind(output)
    if weights is None:
        return None
    lineage = _lineage(session, spec)
    suffix = (job.fine_tuning or {}).get("suffix") if isinstance(job.fine_tuning, dict) else None
    name = fine_tuned_name(str(lineage.pop("display") or "model"), suffix, job.id)
    model = RegisteredModel(
        owner_id=job.owner_id,
        name=name,
        kind="finetuned",
        # No made-up English prose: the UI says "from job #N <name>" in the reader's language from
        # the version's `source_job`; the description is the owner's to write.
        description="",
        shared=False,
        source="job",
        source_ref=str(job.id),
    )
    session.add(model)
    session.flush()
    version = _job_version(session, model, job=job, output=output, weights=weights, created_by=job.owner_id)
    details = {"name": name, "job_id": job.id}
    record(session, AuditAction.model_registered, actor=None, model_id=model.id, details=details)
    return version


def add_job_version(
    session: Session, *, settings: Settings, actor: User, model_id: int, job_id: int, ip: str | None
) -> ModelVersion:
    """A succeeded training job of the caller's, registered as the next version of this model."""
    model = get_model(session, actor=actor, model_id=model_id, change=True)
    job = session.get(Job, job_id)
    if job is None or not ownership.can_access(actor, job.owner_id):
        raise InvalidInput(
            f"no job {job_id} of yours",
            code="invalid_job",
            fields=[FieldIssue(field="job_id", message="not one of your jobs")],
        )
    spec = job.spec or {}
    if job.status != JobStatus.succeeded.value or spec.get("stage", "sft") not in TRAINING_STAGES:
        raise Conflict(
            "only a succeeded training job can become a model version",
            code="job_not_succeeded",
            fields=[FieldIssue(field="job_id", message=f"the job is {job.status}")],
        )
    output = job_output(settings, job)
    weights = model_files.weights_kind(output)
    if weights is None or job.files_removed_at is not None:
        raise Conflict(
            "the job's output is gone",
            code="job_output_missing",
            fields=[FieldIssue(field="job_id", message="no adapter or weights in its output")],
        )
    version = _job_version(session, model, job=job, output=output, weights=weights, created_by=actor.id)
    details = {"version_id": version.id, "job_id": job.id}
    record(session, AuditAction.model_version_created, actor=actor, model_id=model.id, ip=ip, details=details)
    session.commit()
    return version
