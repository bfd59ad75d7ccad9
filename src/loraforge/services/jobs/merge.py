"""Merge jobs: an adapter version of a registered model merged into its base as a new `full` version.

`request_merge` makes the job (through `services.jobs.submit.new_job`, like every job) and the new
version, listed at once as `merging`; the scheduler launches it with `merge_engine_spec` (no dataset:
base and adapter folders resolved at launch) and, when it succeeds, `finish_merge` points the version
at the job's output and makes it `ready` and current. A merge that ends otherwise leaves the version
reported `failed` (`services.models.versions.effective_status`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobStatus, ModelVersion, RegisteredModel, User
from loraforge.errors import Conflict
from loraforge.services.jobs.states import transition
from loraforge.services.jobs.submit import new_job
from loraforge.services.models import files as model_files
from loraforge.services.models.catalog import get_version, record
from loraforge.services.models.resolution import load_paths, pinned_version
from loraforge.services.models.versions import ensure_ready, job_output, new_version
from loraforge.services.platform.archives import folder_size
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

MERGE_STAGE = "merge"
# The key of a merge job's stored spec that names the version being produced.
MERGE_TARGET_KEY = "merge_target_version"


def is_merge(job: Job) -> bool:
    return (job.spec or {}).get("stage") == MERGE_STAGE


def request_merge(
    session: Session, *, settings: Settings, actor: User, version_id: int, ip: str | None
) -> tuple[Job, ModelVersion]:
    """Queue a merge job for an adapter version; the new `full` version appears now as `merging` and
    becomes `ready` (and current) when the job succeeds."""
    model, version = get_version(session, actor=actor, version_id=version_id, change=True)
    if version.weights != "adapter":
        raise Conflict("only adapter versions can be merged", code="not_an_adapter")
    ensure_ready(session, model, version)
    load_paths(session, settings=settings, version=version)  # the files must be there now
    source = f"{model.name}@v{version.number}"
    job = new_job(
        session, settings=settings, actor=actor, name=f"merge {source}", ip=ip,
        spec={"stage": MERGE_STAGE, "model_name_or_path": source, "devices": "cpu"},
        details={"merge_version_id": version.id},
    )  # fmt: skip
    merged = new_version(
        session,
        model,
        weights="full",
        status="merging",
        source_job_id=job.id,
        base_version_id=version.base_version_id,
        base_ref=version.base_ref,
        parent_version_id=version.id,
        dataset_version_id=version.dataset_version_id,
        spec=version.spec,
        metrics=dict(version.metrics or {}),
        created_by=actor.id,
    )
    job.spec = {**job.spec, MERGE_TARGET_KEY: merged.id}
    details = {"version_id": version.id, "job_id": job.id, "new_version_id": merged.id}
    record(session, AuditAction.model_merge_requested, actor=actor, model_id=model.id, ip=ip, details=details)
    transition(session, job, JobStatus.queued)
    session.commit()
    return job, merged


def merge_engine_spec(session: Session, *, settings: Settings, job: Job, run_dir: Path) -> dict[str, Any]:
    """The engine spec of a merge job: base and adapter folders resolved at launch, output in the run."""
    found = pinned_version(session, (job.spec or {}).get("model_name_or_path"))
    if found is None:
        raise RuntimeError("the adapter version to merge no longer exists")
    base, adapter = load_paths(session, settings=settings, version=found[1])
    if adapter is None:
        raise RuntimeError("the version to merge is not an adapter")
    return {
        "stage": MERGE_STAGE,
        "model_name_or_path": base,
        "adapter_name_or_path": str(adapter),
        "output_dir": str(run_dir / "output"),
        "devices": "cpu",
        "resource_interval_seconds": 0,
    }


def finish_merge(session: Session, *, settings: Settings, job: Job) -> ModelVersion | None:
    """Called in the transaction that moves a merge job to succeeded (no commit here): the merged
    version gets the job's output, or is marked `failed` when the output holds no full model."""
    target_id = (job.spec or {}).get(MERGE_TARGET_KEY)
    version = session.get(ModelVersion, target_id) if isinstance(target_id, int) else None
    if version is None or version.source_job_id != job.id:
        return None
    output = job_output(settings, job)
    if model_files.weights_kind(output) != "full":
        version.status = "failed"
        return None
    version.path = str(output)
    version.status = "ready"
    version.info = model_files.detect_info(output)
    version.size_bytes = folder_size(output)
    model = session.get(RegisteredModel, version.model_id)
    if model is not None:
        model.current_version_id = version.id
    return version
