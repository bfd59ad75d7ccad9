"""OpenAI's fine-tuning jobs (`/v1/fine_tuning/jobs`) over LoRAForge jobs: create, list, retrieve,
cancel, and the `fine_tuning.job` object.

A fine-tuning job IS a LoRAForge job (same id, same queue, same engine, visible in the Jobs UI); this
module only translates. `create` builds a job spec from the OpenAI request (`fine_tuning_spec`: model,
training/validation file → their datasets' pinned versions, method and hyperparameters) and submits it
through `services.jobs.submit.create_job(start=True)`; reads map a job to an OpenAI object (its
events and checkpoints: `fine_tuning_events`).

The list shows the caller's jobs created through this API (`jobs.fine_tuning` set); retrieve, events,
checkpoints and cancel accept any job the caller may read (other jobs map sensibly, see `job_object`).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobEvent, JobStatus, User
from loraforge.errors import InvalidInput
from loraforge.executors.base import Executor
from loraforge.services.jobs import lifecycle, submit
from loraforge.services.jobs.access import get_job
from loraforge.services.jobs.states import StaleJobState
from loraforge.services.models import resolution
from loraforge.services.openai import files as openai_files
from loraforge.services.openai.fine_tuning_spec import (
    FineTuneRequest,
    check_request,
    check_training_rows,
    derive_spec,
    invalid,
    method_of,
    remap_spec_error,
    report_overrides,
    resolve_hyperparameters,
    spec_hyperparameters,
)
from loraforge.services.platform.owner_names import clip_name
from loraforge.settings import Settings

ORGANIZATION = "org-loraforge"
# OpenAI's status vocabulary for ours (draft: the job exists but waits for nothing we validate later).
# OpenAI has no stopped: a job stopped here (resumable from a checkpoint in LoRAForge's own API) is
# `cancelled` to OpenAI clients, with no `error`, as their cancel would leave it.
STATUS = {
    "draft": "validating_files",
    "queued": "queued",
    "starting": "queued",
    "running": "running",
    "stopping": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
    "stopped": "cancelled",
}
_CANCEL_ATTEMPTS = 5


def create(
    session: Session, *, settings: Settings, actor: User, request: FineTuneRequest, ip: str | None
) -> Job:
    """Validate the request, build the spec, and queue the job (`jobs.create_job(start=True)`)."""
    check_request(request)
    method_type, given = method_of(request)
    resolved = resolve_hyperparameters(method_type, given)
    train_file, _dataset, version = openai_files.training_version(
        session, actor=actor, file_id=request.training_file, field="training_file"
    )
    check_training_rows(method_type, version, train_file.filename)
    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
    spec = derive_spec(
        model=request.model, method_type=method_type, resolved=resolved, version=version, seed=seed
    )
    validation_id: str | None = None
    if request.validation_file:
        valid_file, _vds, valid_version = openai_files.training_version(
            session, actor=actor, file_id=request.validation_file, field="validation_file"
        )
        spec["validation_dataset"] = valid_version.dataset_id
        spec["validation_dataset_version"] = valid_version.id
        validation_id = openai_files.public_id(valid_file.id)
    spec.update(request.loraforge_spec or {})
    name = clip_name(request.suffix or f"ft-{request.model}")
    report_overrides(resolved, spec, request.loraforge_spec or {})
    fine_tuning = {
        "model": request.model,
        "suffix": request.suffix,
        "metadata": request.metadata,
        "training_file": openai_files.public_id(train_file.id),
        "validation_file": validation_id,
        "method": {"type": method_type, method_type: {"hyperparameters": resolved}},
        "hyperparameters": resolved,
    }
    try:
        # One transaction: the job is never visible (or registered on success) without its request.
        return submit.create_job(
            session,
            settings=settings,
            actor=actor,
            name=name,
            spec=spec,
            start=True,
            ip=ip,
            fine_tuning=fine_tuning,
        )
    except InvalidInput as exc:
        raise remap_spec_error(exc) from None


# ---- reads --------------------------------------------------------------------------------------------


def get(session: Session, *, actor: User, job_id: str) -> Job:
    """Any job the caller may read (`services.jobs.access` policy), by its /v1 id (the job id as a
    string)."""
    return get_job(session, actor=actor, job_id=_numeric_id(job_id) or 0)


# ASCII digits only: `str.isdigit` is also true for `³` or `٣`, which `int` refuses or misreads.
_JOB_ID = re.compile(r"[0-9]{1,18}")


def _numeric_id(raw: str) -> int | None:
    """The job id a /v1 id names, or None (an unknown id is "not found", never an exception)."""
    return int(raw) if _JOB_ID.fullmatch(raw) else None


@dataclass(frozen=True)
class JobListPage:
    items: list[Job]
    has_more: bool


def list_jobs(
    session: Session, *, actor: User, after: str | None, limit: int, metadata: dict[str, str]
) -> JobListPage:
    """The caller's fine-tuning jobs (created through this API), newest first; `after` = the last id of
    the previous page; `metadata` keeps jobs whose metadata has every given key = value (checked here
    in batches, as JSON filters differ between SQLite and PostgreSQL)."""
    conditions = [Job.owner_id == actor.id, Job.fine_tuning.is_not(None)]
    if after:
        cursor_id = _numeric_id(after)
        if cursor_id is None:
            raise invalid("after", "must be a fine-tuning job id")
        conditions.append(Job.id < cursor_id)
    found: list[Job] = []
    cursor: int | None = None
    batch = max(limit + 1, 50)
    while len(found) <= limit:
        query = select(Job).where(*conditions)
        if cursor is not None:
            query = query.where(Job.id < cursor)
        rows = list(session.scalars(query.order_by(Job.id.desc()).limit(batch)))
        for job in rows:
            ft = job.fine_tuning
            if not isinstance(ft, dict):  # a JSON null, should one ever be written
                continue
            tags = ft.get("metadata") or {}
            if all(tags.get(k) == v for k, v in metadata.items()):
                found.append(job)
        if len(rows) < batch:
            break
        cursor = rows[-1].id
    return JobListPage(items=found[:limit], has_more=len(found) > limit)


def _last_metric(session: Session, job_id: int) -> JobEvent | None:
    query = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.type == "metric")
        .order_by(JobEvent.seq.desc())
        .limit(1)
    )
    return session.scalar(query)


def unix_seconds(value: Any) -> int | None:
    """A datetime as OpenAI's integer Unix time (None stays None)."""
    return int(value.timestamp()) if value is not None else None


def fine_tuned_name(session: Session, job: Job) -> str | None:
    """The registered model a succeeded job produced (None before success)."""
    if job.status != JobStatus.succeeded.value:
        return None
    try:
        return resolution.fine_tuned_model_name(session, job_id=job.id)
    except NotImplementedError:  # the registry seam before it is filled in
        return None


def expected_model_name(job: Job) -> str:
    """The name the registry gives a job's model (`ft:<base>:<suffix or lf>:<job id>`), for checkpoint
    names while the job runs."""
    ft = job.fine_tuning or {}
    base = ft.get("model") or job.spec.get("model_name_or_path") or "model"
    return f"ft:{base}:{ft.get('suffix') or 'lf'}:{job.id}"


def job_object(session: Session, *, job: Job) -> dict[str, Any]:
    """The OpenAI `fine_tuning.job` object for a job (made here or elsewhere)."""
    ft = job.fine_tuning if isinstance(job.fine_tuning, dict) else {}
    spec = job.spec or {}
    stage = spec.get("stage", "sft")
    method_type = "dpo" if stage == "dpo" else "supervised"
    hyperparameters = ft.get("hyperparameters") or spec_hyperparameters(spec)
    metric = _last_metric(session, job.id)
    data = metric.data if metric is not None else {}
    tokens = data.get("tokens_total")
    estimated: int | None = None
    eta = data.get("eta_s")
    if job.status in ("starting", "running") and isinstance(eta, int | float) and metric is not None:
        estimated = int(metric.ts + eta)
    error = None
    if job.status == JobStatus.failed.value:
        raw = job.error or {}
        error = {
            "code": str(raw.get("code") or "failed"),
            "message": str(raw.get("message") or "the job failed"),
            "param": None,
        }
    return {
        "id": str(job.id),
        "object": "fine_tuning.job",
        "created_at": unix_seconds(job.created_at),
        "finished_at": unix_seconds(job.finished_at),
        "model": ft.get("model") or spec.get("model_name_or_path") or "",
        "fine_tuned_model": fine_tuned_name(session, job),
        "organization_id": ORGANIZATION,
        "result_files": [],
        "status": STATUS.get(job.status, job.status),
        "validation_file": ft.get("validation_file"),
        # Jobs made elsewhere name their dataset, which is what trained them.
        "training_file": ft.get("training_file") or f"dataset-{job.dataset_id}",
        "hyperparameters": {k: v for k, v in hyperparameters.items() if k != "beta"},
        "method": ft.get("method")
        or {"type": method_type, method_type: {"hyperparameters": hyperparameters}},
        "trained_tokens": int(tokens) if isinstance(tokens, int | float) else None,
        "error": error,
        "seed": int(spec.get("seed", 42)),
        "metadata": ft.get("metadata"),
        "user_provided_suffix": ft.get("suffix"),
        "estimated_finish": estimated,
        "integrations": [],
    }


def cancel(session: Session, *, executor: Executor, actor: User, job_id: str, ip: str | None) -> Job:
    """OpenAI's cancel is immediate: `services.jobs.lifecycle.cancel_job` (the process group is killed). A job
    the scheduler moves at the same moment (queued → starting) is read again and cancelled in its new
    state, rather than handing the client a 409 for a race it cannot see."""
    job = get(session, actor=actor, job_id=job_id)
    for attempt in range(_CANCEL_ATTEMPTS):
        try:
            return lifecycle.cancel_job(session, executor=executor, actor=actor, job_id=job.id, ip=ip)
        except StaleJobState:
            session.rollback()
            if attempt == _CANCEL_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
