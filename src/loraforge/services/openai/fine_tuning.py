"""OpenAI's fine-tuning jobs (`/v1/fine_tuning/jobs`) over LoRAForge jobs.

A fine-tuning job IS a LoRAForge job (same id, same queue, same engine, visible in the Jobs UI); this
module only translates. `create` builds a job spec from the OpenAI request (model, training/validation
file → their datasets' pinned versions, method and hyperparameters) and submits it through
`services.jobs.lifecycle.create_job(start=True)`; reads map a job and its events/checkpoints to OpenAI
objects.

Choices (the OpenAI API leaves them to the platform):
- "auto" hyperparameters: n_epochs 3 (the engine's default, and what OpenAI picks for small files),
  batch_size 4, learning_rate = 1e-4 × multiplier (multiplier "auto" = 1; 1e-4 is a usual LoRA rate),
  DPO beta 0.1. The resolved numbers are what the job object reports.
- LoRA always (`finetuning_type: lora`), metrics every step (OpenAI reports every step), a checkpoint
  per epoch (OpenAI keeps per-epoch checkpoints). `loraforge_spec` (a dict in the body, e.g. through the
  client's `extra_body`) is merged over the derived spec and validated like any job spec.
- The list shows the caller's jobs created through this API (`jobs.fine_tuning` set); retrieve, events,
  checkpoints and cancel accept any job the caller may read (other jobs map sensibly, see `job_object`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Job, JobEvent, JobStatus, User
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.executors.base import Executor
from loraforge.services.jobs import lifecycle as jobs
from loraforge.services.jobs.states import StaleJobState
from loraforge.services.models import catalog as registry
from loraforge.services.openai import files as openai_files
from loraforge.settings import Settings

ORGANIZATION = "org-loraforge"
BASE_LEARNING_RATE = 1e-4
AUTO_EPOCHS = 3
AUTO_BATCH_SIZE = 4
AUTO_BETA = 0.1
# OpenAI's status vocabulary for ours (draft: the job exists but waits for nothing we validate later).
STATUS = {
    "draft": "validating_files",
    "queued": "queued",
    "starting": "queued",
    "running": "running",
    "stopping": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
}
STAGES = {"supervised": "sft", "dpo": "dpo"}
# Keys the request itself decides; `loraforge_spec` may not override them.
_REQUEST_KEYS = ("model_name_or_path", "stage", "dataset", "dataset_version", "validation_dataset",
                 "validation_dataset_version")  # fmt: skip
# Error fields of the derived spec, named as the OpenAI request names them.
_FIELD_OF_SPEC_KEY = {
    "model_name_or_path": "model",
    "dataset": "training_file",
    "dataset_version": "training_file",
    "validation_dataset": "validation_file",
    "validation_dataset_version": "validation_file",
    "num_train_epochs": "hyperparameters.n_epochs",
    "per_device_train_batch_size": "hyperparameters.batch_size",
    "learning_rate": "hyperparameters.learning_rate_multiplier",
    "pref_beta": "hyperparameters.beta",
    "seed": "seed",
}
# Spec keys behind the OpenAI hyperparameters (a `loraforge_spec` that sets them wins; reported back).
_SPEC_HYPERPARAMETERS = {
    "num_train_epochs": "n_epochs",
    "per_device_train_batch_size": "batch_size",
    "learning_rate": "learning_rate_multiplier",
    "pref_beta": "beta",
}
_CANCEL_ATTEMPTS = 5
_SUFFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_EVENT_ID = re.compile(r"^ftevent-([0-9]{1,18})-([0-9]{1,18})$")
_CHECKPOINT_ID = re.compile(r"^ftckpt-([0-9]{1,18})-([0-9]{1,18})$")
# Resource samples are monitoring noise for this API; everything else becomes an event.
_HIDDEN_EVENT_TYPES = ("resource",)


def _invalid(field: str, message: str, code: str = "invalid_request") -> InvalidInput:
    return InvalidInput(f"{field}: {message}", code=code, fields=[FieldIssue(field=field, message=message)])


@dataclass(frozen=True)
class FineTuneRequest:
    model: str
    training_file: str
    validation_file: str | None = None
    suffix: str | None = None
    seed: int | None = None
    metadata: dict[str, str] | None = None
    hyperparameters: dict[str, Any] | None = None  # legacy top-level form
    method: dict[str, Any] | None = None  # {type, supervised|dpo: {hyperparameters}}
    loraforge_spec: dict[str, Any] | None = None


def _resolve_hyperparameters(method_type: str, given: dict[str, Any]) -> dict[str, Any]:
    def pick(key: str, auto: Any) -> Any:
        value = given.get(key)
        return auto if value in (None, "auto") else value

    resolved: dict[str, Any] = {
        "n_epochs": int(pick("n_epochs", AUTO_EPOCHS)),
        "batch_size": int(pick("batch_size", AUTO_BATCH_SIZE)),
        "learning_rate_multiplier": float(pick("learning_rate_multiplier", 1.0)),
    }
    if method_type == "dpo":
        resolved["beta"] = float(pick("beta", AUTO_BETA))
    return resolved


def _method_of(request: FineTuneRequest) -> tuple[str, dict[str, Any]]:
    """(method type, the hyperparameters as given), from `method` or the legacy `hyperparameters`."""
    method = request.method or {}
    method_type = str(method.get("type") or "supervised")
    if method_type not in STAGES:
        raise _invalid(
            "method.type", f"{method_type!r} is not supported here; use 'supervised' or 'dpo'", "unsupported"
        )
    section = method.get(method_type) or {}
    given = dict(section.get("hyperparameters") or {}) if isinstance(section, dict) else {}
    where = f"method.{method_type}.hyperparameters"
    if not given and request.hyperparameters:
        given, where = dict(request.hyperparameters), "hyperparameters"
    if "beta" in given and method_type != "dpo":
        raise _invalid(f"{where}.beta", "beta applies to the dpo method only")
    return method_type, given


def _check_request(request: FineTuneRequest) -> None:
    if request.suffix is not None and not _SUFFIX.fullmatch(request.suffix):
        raise _invalid("suffix", "1 to 64 characters: letters, digits, '.', '_' or '-' (not first)")
    metadata = request.metadata or {}
    if len(metadata) > 16:
        raise _invalid("metadata", "at most 16 keys")
    for key, value in metadata.items():
        if len(key) > 64 or len(value) > 512:
            raise _invalid(f"metadata.{key}", "keys are at most 64 characters, values at most 512")
    for key in request.loraforge_spec or {}:
        if key in _REQUEST_KEYS:
            raise _invalid(f"loraforge_spec.{key}", "set by the request (model, method, training_file)")


def _remap(exc: InvalidInput) -> InvalidInput:
    """Name the OpenAI request's fields in errors from the spec check (`spec.num_train_epochs` →
    `hyperparameters.n_epochs`, other spec keys → `loraforge_spec.<key>`)."""

    def field(name: str) -> str:
        key = name.removeprefix("spec.")
        return _FIELD_OF_SPEC_KEY.get(key.split(".")[0], f"loraforge_spec.{key}") if key != name else name

    fields = [FieldIssue(field=field(issue.field), message=issue.message) for issue in exc.fields]
    message = exc.message
    for issue, new in zip(exc.fields, fields, strict=True):
        message = message.replace(issue.field, new.field)
    return InvalidInput(message.replace("invalid job spec", "invalid fine-tuning job"), code=exc.code,
                        fields=fields)  # fmt: skip


def create(
    session: Session, *, settings: Settings, actor: User, request: FineTuneRequest, ip: str | None
) -> Job:
    """Validate the request, build the spec, and queue the job (`jobs.create_job(start=True)`)."""
    _check_request(request)
    method_type, given = _method_of(request)
    resolved = _resolve_hyperparameters(method_type, given)
    train_file, _dataset, version = openai_files.training_version(
        session, actor=actor, file_id=request.training_file, field="training_file"
    )
    wants = "preference" if method_type == "dpo" else None
    if wants and version.format != wants:
        raise _invalid("training_file", f"the dpo method needs preference rows; {train_file.filename} has "
                       f"{version.format} rows")  # fmt: skip
    if method_type == "supervised" and version.format in ("preference", "kto"):
        raise _invalid("training_file", f"{version.format} rows need method dpo, not supervised")
    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
    spec: dict[str, Any] = {
        "model_name_or_path": request.model,
        "stage": STAGES[method_type],
        "finetuning_type": "lora",
        "dataset": version.dataset_id,
        "dataset_version": version.id,  # exactly the uploaded rows, even if the dataset changes later
        "num_train_epochs": resolved["n_epochs"],
        "per_device_train_batch_size": resolved["batch_size"],
        "learning_rate": BASE_LEARNING_RATE * resolved["learning_rate_multiplier"],
        "seed": seed,
        "logging_steps": 1,
        "save_strategy": "epoch",
    }
    if method_type == "dpo":
        spec["pref_beta"] = resolved["beta"]
    validation_id: str | None = None
    if request.validation_file:
        valid_file, _vds, valid_version = openai_files.training_version(
            session, actor=actor, file_id=request.validation_file, field="validation_file"
        )
        spec["validation_dataset"] = valid_version.dataset_id
        spec["validation_dataset_version"] = valid_version.id
        validation_id = openai_files.public_id(valid_file.id)
    spec.update(request.loraforge_spec or {})
    name = (request.suffix or f"ft-{request.model}")[:200]
    overridden = set(request.loraforge_spec or {}) & set(_SPEC_HYPERPARAMETERS)
    if overridden:  # report what the job really uses
        from_spec = _spec_hyperparameters(spec)
        for key in overridden:
            if _SPEC_HYPERPARAMETERS[key] in from_spec:
                resolved[_SPEC_HYPERPARAMETERS[key]] = from_spec[_SPEC_HYPERPARAMETERS[key]]
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
        return jobs.create_job(
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
        raise _remap(exc) from None


# ---- reads --------------------------------------------------------------------------------------------


def get(session: Session, *, actor: User, job_id: str) -> Job:
    """Any job the caller may read (`services.jobs.lifecycle` policy), by its /v1 id (the job id as a
    string)."""
    numeric = int(job_id) if job_id.isdigit() and len(job_id) <= 18 else 0
    return jobs.get_job(session, actor=actor, job_id=numeric)


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
        if not after.isdigit() or len(after) > 18:
            raise _invalid("after", "must be a fine-tuning job id")
        conditions.append(Job.id < int(after))
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


def _unix(value: Any) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _spec_hyperparameters(spec: dict[str, Any]) -> dict[str, Any]:
    """For jobs made elsewhere: the spec's numbers in OpenAI's terms."""
    epochs = float(spec.get("num_train_epochs") or AUTO_EPOCHS)
    out: dict[str, Any] = {
        "n_epochs": int(epochs) if epochs.is_integer() else epochs,
        "batch_size": int(spec.get("per_device_train_batch_size") or 1),
        "learning_rate_multiplier": float(spec.get("learning_rate") or 5e-5) / BASE_LEARNING_RATE,
    }
    if spec.get("stage") == "dpo":
        out["beta"] = float(spec.get("pref_beta") or AUTO_BETA)
    return out


def _fine_tuned_name(session: Session, job: Job) -> str | None:
    if job.status != JobStatus.succeeded.value:
        return None
    try:
        return registry.fine_tuned_model_name(session, job_id=job.id)
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
    hyperparameters = ft.get("hyperparameters") or _spec_hyperparameters(spec)
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
        "created_at": _unix(job.created_at),
        "finished_at": _unix(job.finished_at),
        "model": ft.get("model") or spec.get("model_name_or_path") or "",
        "fine_tuned_model": _fine_tuned_name(session, job),
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
            return jobs.cancel_job(session, executor=executor, actor=actor, job_id=job.id, ip=ip)
        except StaleJobState:
            session.rollback()
            if attempt == _CANCEL_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


# ---- events ---------------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _event_object(job: Job, event: JobEvent) -> dict[str, Any]:
    data = dict(event.data or {})
    level, kind, payload = "info", "message", None
    if event.type == "metric":
        kind = "metrics"
        payload = {"step": data.get("step"), "total_steps": data.get("total_steps"),
                   "train_loss": data.get("loss"), "learning_rate": data.get("lr"),
                   "grad_norm": data.get("grad_norm"), "epoch": data.get("epoch"),
                   "tokens_per_s": data.get("tokens_per_s"), "eta_s": data.get("eta_s")}  # fmt: skip
        payload.update({k: v for k, v in data.items() if k.startswith(("rewards_", "logps_"))})
        loss = _number(data.get("loss"))
        message = f"Step {data.get('step')}/{data.get('total_steps')}: training loss=" + (
            f"{loss:.4f}" if loss is not None else "n/a"
        )
    elif event.type == "eval":
        kind = "metrics"
        payload = {"step": data.get("step"), "valid_loss": data.get("eval_loss"),
                   "perplexity": data.get("perplexity"), **dict(data.get("metrics") or {})}  # fmt: skip
        loss = _number(data.get("eval_loss"))
        message = f"Step {data.get('step')}: validation loss=" + (
            f"{loss:.4f}" if loss is not None else "n/a"
        )
    elif event.type == "status":
        status = str(data.get("status", ""))
        level = "error" if status == "failed" else "info"
        message = f"Status: {status}" + (f": {data['message']}" if data.get("message") else "")
    elif event.type == "log":
        level = {"warning": "warn", "error": "error"}.get(str(data.get("level")), "info")
        message = str(data.get("message", ""))
    elif event.type == "error":
        level = "error"
        message = f"{data.get('code', 'error')}: {data.get('message', '')}"
        if data.get("suggestion"):
            message += f" ({data['suggestion']})"
    elif event.type == "checkpoint":
        message = f"Checkpoint created at step {data.get('step')}"
    elif event.type == "artifact":
        message = f"Saved {data.get('kind', 'artifact')}"
    else:
        message = event.type
    return {
        "object": "fine_tuning.job.event",
        "id": f"ftevent-{job.id}-{event.seq}",
        "created_at": int(event.ts),
        "level": level,
        "message": message,
        "data": payload,
        "type": kind,
    }


def _created_event(job: Job) -> dict[str, Any]:
    """OpenAI's first event; seq 0 sorts before every engine event (they start at 1)."""
    return {
        "object": "fine_tuning.job.event",
        "id": f"ftevent-{job.id}-0",
        "created_at": _unix(job.created_at),
        "level": "info",
        "message": f"Created fine-tuning job: {job.id}",
        "data": None,
        "type": "message",
    }


@dataclass(frozen=True)
class ObjectPage:
    data: list[dict[str, Any]]
    has_more: bool


def events(session: Session, *, actor: User, job_id: str, after: str | None, limit: int) -> ObjectPage:
    """Newest first, like OpenAI; `after` = the last event id of the previous page (older ones follow)."""
    job = get(session, actor=actor, job_id=job_id)
    below: int | None = None
    if after:
        match = _EVENT_ID.fullmatch(after)
        if match is None or int(match.group(1)) != job.id:
            raise _invalid("after", f"must be an event id of this job, like ftevent-{job.id}-12")
        below = int(match.group(2))
    query = select(JobEvent).where(JobEvent.job_id == job.id, JobEvent.type.not_in(_HIDDEN_EVENT_TYPES))
    if below is not None:
        query = query.where(JobEvent.seq < below)
    rows = list(session.scalars(query.order_by(JobEvent.seq.desc()).limit(limit + 1)))
    data = [_event_object(job, e) for e in rows]
    if below is None or below > 0:
        data.append(_created_event(job))
    return ObjectPage(data=data[:limit], has_more=len(data) > limit)


# ---- checkpoints ----------------------------------------------------------------------------------------


def _train_losses(session: Session, job_id: int) -> Iterator[tuple[int, float | None]]:
    rows = session.scalars(
        select(JobEvent.data)
        .where(JobEvent.job_id == job_id, JobEvent.type == "metric")
        .order_by(JobEvent.seq)
    )
    for data in rows:
        if isinstance(data.get("step"), int):
            yield data["step"], _number(data.get("loss"))


def checkpoints(
    session: Session, *, settings: Settings, actor: User, job_id: str, after: str | None, limit: int
) -> ObjectPage:
    """The job's complete checkpoints, newest first; `after` = the last checkpoint id of the previous page."""
    job = get(session, actor=actor, job_id=job_id)
    below: int | None = None
    if after:
        match = _CHECKPOINT_ID.fullmatch(after)
        if match is None or int(match.group(1)) != job.id:
            raise _invalid("after", f"must be a checkpoint id of this job, like ftckpt-{job.id}-10")
        below = int(match.group(2))
    listing = jobs.checkpoints(session, settings=settings, actor=actor, job_id=job.id)
    losses = dict(_train_losses(session, job.id))
    model = _fine_tuned_name(session, job) or expected_model_name(job)
    data: list[dict[str, Any]] = []
    for checkpoint, reported in sorted(listing, key=lambda item: item[0].step, reverse=True):
        if below is not None and checkpoint.step >= below:
            continue
        train_loss = _number(reported.get("loss"))
        if train_loss is None:
            train_loss = losses.get(checkpoint.step)
        metrics: dict[str, Any] = {"step": float(checkpoint.step), "train_loss": train_loss}
        if _number(reported.get("eval_loss")) is not None:
            metrics["valid_loss"] = float(reported["eval_loss"])
        data.append(
            {
                "object": "fine_tuning.job.checkpoint",
                "id": f"ftckpt-{job.id}-{checkpoint.step}",
                "created_at": int(checkpoint.created_at),
                "fine_tuned_model_checkpoint": f"{model}:ckpt-step-{checkpoint.step}",
                "step_number": checkpoint.step,
                "metrics": metrics,
                "fine_tuning_job_id": str(job.id),
            }
        )
    return ObjectPage(data=data[:limit], has_more=len(data) > limit)
