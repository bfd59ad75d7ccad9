"""The model registry: base and fine-tuned models, versions, lineage, merge jobs.

Contract used by others (keep these signatures):
- `resolve_for_inference(session, settings=, actor=, name=) -> ServedModel` — `name` is a `/v1/models`
  id (`demo-tiny`, a registered model's name, or `<name>@v<number>`); NotFound(code="model_not_found")
  when it does not exist or the actor may not read it.
- `visible_models(session, settings=, actor=) -> list[VisibleModel]` — what `/v1/models` lists.
- `register_job_result(session, settings=, job=) -> ModelVersion | None` — called in the transaction that
  moves a training job to `succeeded`; returns the new version (None for jobs that produce no model).
- `fine_tuned_model_name(session, job_id=) -> str | None` — the registered name a job produced.

Access (`services.platform.ownership`): read = owner, shared models for everyone, and operators/admins; change
(rename, share, delete, new versions, merge) = the owner, and admins for any model. Readers who may
not change get 403 `not_owner`; strangers get 404 so ids reveal nothing.

Files: a version's folder is `version.path` when set (a fine-tuned or merged version points at its
job's `RUN_DIR/output`, no copy; a local base model at the folder staff registered), else the
id-derived `<models_dir>/<model_id>/versions/<version_id>` (hub downloads). Only id-derived folders and
job outputs belong to the registry; a registered local folder is never deleted.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from loraforge.db.models import (
    FINAL,
    PENDING_OR_ACTIVE,
    Dataset,
    DatasetVersion,
    Deployment,
    Job,
    JobEvent,
    JobStatus,
    ModelVersion,
    RegisteredModel,
    User,
)
from loraforge.db.session import Database
from loraforge.errors import Conflict, FieldIssue, Forbidden, InvalidInput, NotFound
from loraforge.inference.types import ServedModel
from loraforge.services.datasets import catalog as dataset_service
from loraforge.services.jobs import specs as job_specs
from loraforge.services.jobs.states import transition
from loraforge.services.models import fetch as model_fetch
from loraforge.services.models import files as model_files
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

DEMO_MODEL = job_specs.DEMO_MODEL
STAFF = ownership.STAFF
TRAINING_STAGES = ("sft", "pt", "dpo")
MERGE_STAGE = "merge"
# The key of a merge job's stored spec that names the version being produced.
MERGE_TARGET_KEY = "merge_target_version"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}$")
_VERSION_SUFFIX = re.compile(r"^(?P<name>.+)@v(?P<number>\d{1,9})$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._/@-]+")
_DEMO_CREATED = datetime(2025, 1, 1, tzinfo=UTC)  # demo-tiny is virtual: a fixed, stable timestamp
_LIVE_DEPLOYMENT = ("starting", "ready")


@dataclass(frozen=True)
class VisibleModel:
    name: str
    owner: str  # `owned_by` in /v1/models: "loraforge" for platform models, else the owner's username
    created: datetime
    kind: str  # base | finetuned | provider


# ---- names and access ---------------------------------------------------------------------------------


def check_name(name: str, *, field: str = "name") -> str:
    """A user-chosen model name: the `/v1` model id, so it must be unambiguous there."""
    name = name.strip()
    problem: str | None = None
    if not _NAME.match(name):
        problem = "1-200 characters: letters, digits and . _ : / @ -, starting with a letter or digit"
    elif _VERSION_SUFFIX.match(name):
        problem = "must not end with @v<number> (that names a version)"
    elif name == DEMO_MODEL:
        problem = f"{DEMO_MODEL!r} is the built-in demo model"
    elif name.startswith("ft:"):
        problem = "names starting with 'ft:' are given to fine-tuned models automatically"
    if problem is not None:
        raise InvalidInput(
            f"invalid model name: {problem}",
            code="invalid_model_name",
            fields=[FieldIssue(field=field, message=problem)],
        )
    return name


def _name_free(session: Session, name: str, *, except_id: int | None = None) -> None:
    query = select(RegisteredModel.id).where(RegisteredModel.name == name)
    found = session.scalar(query)
    if found is not None and found != except_id:
        raise Conflict(
            f"a model named {name!r} already exists",
            code="model_name_taken",
            fields=[FieldIssue(field="name", message="already taken")],
        )


def can_read(actor: User, model: RegisteredModel) -> bool:
    if actor.disabled:
        return False
    return model.shared or ownership.can_access(actor, model.owner_id, staff_may=STAFF)


def can_change(actor: User, model: RegisteredModel) -> bool:
    return ownership.can_access(actor, model.owner_id, staff_may=ownership.ADMIN_ONLY)


def _not_found() -> NotFound:
    return NotFound("model not found", code="model_not_found")


def get_model(session: Session, *, actor: User, model_id: int, change: bool = False) -> RegisteredModel:
    model = session.get(RegisteredModel, model_id)
    if model is None or not can_read(actor, model):
        raise _not_found()
    if change and not can_change(actor, model):
        raise Forbidden("only the model's owner (or an admin) may change it", code="not_owner")
    return model


def get_version(
    session: Session, *, actor: User, version_id: int, change: bool = False
) -> tuple[RegisteredModel, ModelVersion]:
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound("model version not found", code="model_version_not_found")
    try:
        model = get_model(session, actor=actor, model_id=version.model_id, change=change)
    except NotFound:
        raise NotFound("model version not found", code="model_version_not_found") from None
    return model, version


# ---- files ------------------------------------------------------------------------------------------------


def version_dir(settings: Settings, *, model_id: int, version_id: int) -> Path:
    """The registry's own folder for a version (built from ids only)."""
    return settings.models_dir / str(int(model_id)) / "versions" / str(int(version_id))


def version_folder(settings: Settings, version: ModelVersion) -> Path:
    if version.path:
        return Path(version.path)
    return version_dir(settings, model_id=version.model_id, version_id=version.id)


def _has_files(folder: Path) -> bool:
    return model_files.weights_kind(folder) is not None


def effective_status(session: Session, version: ModelVersion) -> str:
    """A `merging` version whose merge job ended without success is reported `failed`."""
    if version.status == "merging" and version.source_job_id is not None:
        job = session.get(Job, version.source_job_id)
        if job is None or (
            job.status in {s.value for s in FINAL} and job.status != JobStatus.succeeded.value
        ):
            return "failed"
    return version.status


def _ensure_ready(session: Session, model: RegisteredModel, version: ModelVersion) -> None:
    status = effective_status(session, version)
    if status != "ready":
        raise Conflict(f"{model.name}@v{version.number} is {status}, not ready", code="model_not_ready")


def load_paths(session: Session, *, settings: Settings, version: ModelVersion) -> tuple[str, Path | None]:
    """(base, adapter) to load a version: a folder or hub id for the base, the adapter folder or None."""
    model = session.get(RegisteredModel, version.model_id)
    assert model is not None  # FK cascade: a version never outlives its model
    folder = version_folder(settings, version)
    if version.weights == "full":
        if (folder / model_files.CONFIG).is_file():
            return str(folder), None
        if model.source == "hub" and model.source_ref:
            return model.source_ref, None  # registered without download: loaders fetch by hub id
        raise Conflict(f"the files of {model.name}@v{version.number} are gone", code="model_files_missing")
    if not (folder / model_files.ADAPTER_CONFIG).is_file():
        raise Conflict(f"the files of {model.name}@v{version.number} are gone", code="model_files_missing")
    if version.base_version_id is not None:
        base_version = session.get(ModelVersion, version.base_version_id)
        if base_version is None or base_version.weights != "full":
            raise Conflict(f"the base model of {model.name} is gone", code="model_files_missing")
        base, _ = load_paths(session, settings=settings, version=base_version)
        return base, folder
    if version.base_ref == DEMO_MODEL:
        return str(job_specs.ensure_demo_model(settings)), folder
    if version.base_ref:
        return version.base_ref, folder
    raise Conflict(f"{model.name}@v{version.number} does not name its base model", code="model_files_missing")


# ---- lookups by name ----------------------------------------------------------------------------------


def lookup(session: Session, name: str) -> tuple[RegisteredModel, ModelVersion] | None:
    """A registered model by `/v1` id: its name (current version) or `<name>@v<number>`."""
    model = session.scalar(select(RegisteredModel).where(RegisteredModel.name == name))
    number: int | None = None
    if model is None:
        match = _VERSION_SUFFIX.match(name)
        if match is None:
            return None
        model = session.scalar(select(RegisteredModel).where(RegisteredModel.name == match["name"]))
        number = int(match["number"])
    if model is None:
        return None
    if number is None:
        version = session.get(ModelVersion, model.current_version_id) if model.current_version_id else None
    else:
        version = session.scalar(
            select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.number == number)
        )
    if version is None:
        return None
    return model, version


def resolve_for_inference(session: Session, *, settings: Settings, actor: User, name: str) -> ServedModel:
    if name == DEMO_MODEL:
        demo = job_specs.ensure_demo_model(settings)
        return ServedModel(name=name, model_id=None, version_id=None, owner_id=None, base=str(demo))
    found = lookup(session, name)
    if found is None or not can_read(actor, found[0]):
        raise NotFound(
            f"the model {name!r} does not exist or you do not have access to it", code="model_not_found"
        )
    model, version = found
    _ensure_ready(session, model, version)
    base, adapter = load_paths(session, settings=settings, version=version)
    return ServedModel(
        name=name,
        model_id=model.id,
        version_id=version.id,
        owner_id=model.owner_id,
        base=base,
        adapter=adapter,
    )


def visible_models(session: Session, *, settings: Settings, actor: User) -> list[VisibleModel]:
    out = [VisibleModel(name=DEMO_MODEL, owner="loraforge", created=_DEMO_CREATED, kind="base")]
    query = (
        select(RegisteredModel, User.username)
        .join(User, User.id == RegisteredModel.owner_id)
        .where(*_visible_conditions(actor))
        .order_by(RegisteredModel.created_at, RegisteredModel.id)
    )
    for model, username in session.execute(query).all():
        out.append(VisibleModel(name=model.name, owner=username, created=model.created_at, kind=model.kind))
    return out


def _visible_conditions(actor: User) -> list[Any]:
    if actor.disabled:
        return [RegisteredModel.id == -1]
    if actor.role_enum in STAFF:
        return []
    return [or_(RegisteredModel.owner_id == actor.id, RegisteredModel.shared.is_(True))]


def fine_tuned_model_name(session: Session, *, job_id: int) -> str | None:
    query = (
        select(RegisteredModel.name)
        .join(ModelVersion, ModelVersion.model_id == RegisteredModel.id)
        .where(ModelVersion.source_job_id == job_id)
        .order_by(ModelVersion.id)
        .limit(1)
    )
    return session.scalar(query)


# ---- training jobs that name registered models (services.jobs.specs) --------------------------------------


def pin_for_training(session: Session, *, actor: User, value: str) -> tuple[str, ModelVersion] | None:
    """A registered model named in a job spec, pinned to `<name>@v<number>`; None when `value` is not
    a registered model the actor may read (it may still be a hub id). Raises when it is not ready."""
    if value == DEMO_MODEL:
        return None
    found = lookup(session, value)
    if found is None or not can_read(actor, found[0]):
        return None
    model, version = found
    _ensure_ready(session, model, version)
    return f"{model.name}@v{version.number}", version


def pinned_version(session: Session, value: Any) -> tuple[RegisteredModel, ModelVersion] | None:
    """The version a stored spec's `<name>@v<number>` names (hub ids never contain '@')."""
    if not isinstance(value, str) or not _VERSION_SUFFIX.match(value):
        return None
    return lookup(session, value)


# ---- listing ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelPage:
    items: list[RegisteredModel]
    total: int


def list_models(
    session: Session,
    *,
    actor: User,
    kind: str | None,
    q: str | None,
    job_id: int | None,
    dataset_version_id: int | None,
    offset: int,
    limit: int,
) -> ModelPage:
    conditions = _visible_conditions(actor)
    if kind:
        conditions.append(RegisteredModel.kind == kind)
    if q:
        conditions.append(func.lower(RegisteredModel.name).contains(q.lower(), autoescape=True))
    if job_id is not None:
        by_job = select(ModelVersion.model_id).where(ModelVersion.source_job_id == job_id)
        conditions.append(RegisteredModel.id.in_(by_job))
    if dataset_version_id is not None:
        by_data = select(ModelVersion.model_id).where(ModelVersion.dataset_version_id == dataset_version_id)
        conditions.append(RegisteredModel.id.in_(by_data))
    total = session.scalar(select(func.count(RegisteredModel.id)).where(*conditions)) or 0
    query = (
        select(RegisteredModel)
        .where(*conditions)
        .order_by(RegisteredModel.created_at.desc(), RegisteredModel.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return ModelPage(items=list(session.scalars(query)), total=total)


def versions_of(session: Session, model: RegisteredModel) -> list[ModelVersion]:
    query = select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.number.desc())
    return list(session.scalars(query))


def owner_name(session: Session, owner_id: int) -> str:
    user = session.get(User, owner_id)
    return user.username if user is not None else ""


def version_view(session: Session, *, model: RegisteredModel, version: ModelVersion) -> dict[str, Any]:
    """A version with its lineage resolved: base, source job, dataset (for the API schema)."""
    base: dict[str, Any] | None = None
    if version.base_version_id is not None:
        base_version = session.get(ModelVersion, version.base_version_id)
        base_model = session.get(RegisteredModel, base_version.model_id) if base_version else None
        if base_version is not None and base_model is not None:
            base = {
                "model_id": base_model.id,
                "version_id": base_version.id,
                "name": f"{base_model.name}@v{base_version.number}",
                "ref": None,
            }
    elif version.base_ref:
        base = {"model_id": None, "version_id": None, "name": version.base_ref, "ref": version.base_ref}
    job: dict[str, Any] | None = None
    if version.source_job_id is not None:
        row = session.get(Job, version.source_job_id)
        if row is not None:
            job = {"id": row.id, "name": row.name, "status": row.status}
    dataset: dict[str, Any] | None = None
    if version.dataset_version_id is not None:
        dv = session.get(DatasetVersion, version.dataset_version_id)
        ds = session.get(Dataset, dv.dataset_id) if dv is not None else None
        if dv is not None and ds is not None:
            dataset = {"id": ds.id, "name": ds.name, "version_id": dv.id, "version_number": dv.number}
    return {
        "id": version.id,
        "model_id": model.id,
        "model_name": model.name,
        "number": version.number,
        "name": f"{model.name}@v{version.number}",
        "weights": version.weights,
        "status": effective_status(session, version),
        "is_current": model.current_version_id == version.id,
        "base": base,
        "source_job": job,
        "dataset": dataset,
        "parent_version_id": version.parent_version_id,
        "metrics": version.metrics or {},
        "spec": version.spec,
        "info": version.info or {},
        "tags": list(version.tags or []),
        "notes": version.notes or "",
        "size_bytes": version.size_bytes,
        "created_by": version.created_by,
        "created_at": version.created_at,
    }


# ---- register / change / delete ------------------------------------------------------------------------


def _new_version(session: Session, model: RegisteredModel, **values: Any) -> ModelVersion:
    number = (
        session.scalar(select(func.max(ModelVersion.number)).where(ModelVersion.model_id == model.id)) or 0
    ) + 1
    version = ModelVersion(model_id=model.id, number=number, **values)
    session.add(version)
    session.flush()
    return version


def register_base(
    session: Session,
    *,
    settings: Settings,
    database: Database | None,
    actor: User,
    name: str,
    source: str,
    ref: str,
    description: str,
    shared: bool,
    download: bool,
    ip: str | None,
) -> RegisteredModel:
    """A base model from a hub id (files fetched in the background when `download`) or a server folder
    (operators and admins only, inside the configured import roots)."""
    name = check_name(name)
    ref = ref.strip()
    folder: Path | None = None
    if source == "local":
        if actor.role_enum not in STAFF:
            raise Forbidden("only operators and admins may register server folders", code="forbidden")
        try:
            folder = dataset_service.check_import_path(settings, ref)
        except NotFound as exc:
            raise InvalidInput(
                exc.message,
                code="invalid_model_path",
                fields=[FieldIssue(field="ref", message=exc.message)],
            ) from None
        if not folder.is_dir() or model_files.weights_kind(folder) != "full":
            message = "not a model folder (config.json and *.safetensors expected)"
            raise InvalidInput(
                message, code="invalid_model_path", fields=[FieldIssue(field="ref", message=message)]
            )
    elif source == "hub":
        if not job_specs.is_hub_id(ref):
            message = "a Hugging Face hub id like 'Qwen/Qwen2.5-0.5B'"
            raise InvalidInput(
                f"invalid hub id: {ref!r}",
                code="invalid_hub_id",
                fields=[FieldIssue(field="ref", message=message)],
            )
    else:  # the schema limits it; services are called from elsewhere too
        raise InvalidInput("source must be hub or local", fields=[FieldIssue("source", "hub or local")])
    _name_free(session, name)
    model = RegisteredModel(
        owner_id=actor.id,
        name=name,
        kind="base",
        description=description,
        shared=shared,
        source=source,
        source_ref=str(folder) if folder is not None else ref,
    )
    session.add(model)
    session.flush()
    fetch = source == "hub" and download and database is not None
    version = _new_version(
        session,
        model,
        weights="full",
        status="downloading" if fetch else "ready",
        path=str(folder) if folder is not None else None,
        info=model_files.detect_info(folder) if folder is not None else {"hub_id": ref},
        size_bytes=model_files.folder_size(folder) if folder is not None else None,
        created_by=actor.id,
    )
    model.current_version_id = version.id
    audit.record(
        session,
        action=AuditAction.model_registered,
        actor=actor,
        target_type="model",
        target_id=model.id,
        ip=ip,
        details={"name": name, "source": source, "ref": model.source_ref, "download": fetch},
    )
    session.commit()
    if fetch and database is not None:
        target = version_dir(settings, model_id=model.id, version_id=version.id)
        model_fetch.start(database, version_id=version.id, hub_id=ref, target=target)
    return model


def update_model(
    session: Session,
    *,
    actor: User,
    model_id: int,
    name: str | None,
    description: str | None,
    shared: bool | None,
    ip: str | None,
) -> RegisteredModel:
    model = get_model(session, actor=actor, model_id=model_id, change=True)
    changes: dict[str, Any] = {}
    if name is not None and name.strip() != model.name:
        new = check_name(name)
        # Queued jobs and merges pin `<name>@v<n>`: a rename would leave them naming nothing.
        reason = model_in_use(session, model)
        if reason is not None:
            raise Conflict(f"the model is in use ({reason}); rename it later", code="model_in_use")
        _name_free(session, new, except_id=model.id)
        changes["name"] = [model.name, new]
        model.name = new
    if description is not None and description != model.description:
        changes["description"] = True
        model.description = description
    if shared is not None and shared != model.shared:
        changes["shared"] = shared
        model.shared = shared
    if changes:
        audit.record(
            session,
            action=AuditAction.model_updated,
            actor=actor,
            target_type="model",
            target_id=model.id,
            ip=ip,
            details=changes,
        )
    session.commit()
    return model


def model_in_use(session: Session, model: RegisteredModel) -> str | None:
    """Why the model may not be deleted now (a live deployment or an unfinished job), or None."""
    version_ids = select(ModelVersion.id).where(ModelVersion.model_id == model.id)
    deployment = session.scalar(
        select(Deployment.id)
        .where(Deployment.model_version_id.in_(version_ids), Deployment.status.in_(_LIVE_DEPLOYMENT))
        .limit(1)
    )
    if deployment is not None:
        return f"deployment {deployment} serves it"
    pending = [s.value for s in PENDING_OR_ACTIVE]
    for job_id, spec in session.execute(select(Job.id, Job.spec).where(Job.status.in_(pending))).all():
        for key in ("model_name_or_path", "adapter_name_or_path"):
            value = (spec or {}).get(key)
            if isinstance(value, str) and (value == model.name or value.startswith(f"{model.name}@v")):
                return f"job {job_id} uses it"
    return None


def _owned_folders(
    settings: Settings, session: Session, version: ModelVersion
) -> list[tuple[Path, int | None]]:
    """Folders of a version the registry may delete: the id-derived one, and a job's output (with the
    job id: another model's version may point at the same output and keep it)."""
    folders: list[tuple[Path, int | None]] = [
        (version_dir(settings, model_id=version.model_id, version_id=version.id), None)
    ]
    if version.path and version.source_job_id is not None:
        job = session.get(Job, version.source_job_id)
        if job is not None and Path(version.path) == _job_output(settings, job):
            folders.append((Path(version.path), job.id))
    return folders


def delete_model(
    session: Session, *, settings: Settings, actor: User, model_id: int, files: bool, ip: str | None
) -> None:
    model = get_model(session, actor=actor, model_id=model_id, change=True)
    reason = model_in_use(session, model)
    if reason is not None:
        raise Conflict(f"the model is in use ({reason})", code="model_in_use")
    remove: list[tuple[Path, int | None]] = []
    if files:
        for version in versions_of(session, model):
            remove.extend(_owned_folders(settings, session, version))
    audit.record(
        session,
        action=AuditAction.model_deleted,
        actor=actor,
        target_type="model",
        target_id=model.id,
        ip=ip,
        details={"name": model.name, "files": files},
    )
    session.delete(model)
    session.commit()
    # After the commit: a failed commit must not have taken files a surviving row points at.
    roots = [settings.models_dir.resolve(), settings.runs_dir.resolve()]
    for folder, job_id in remove:
        if folder.is_symlink():
            continue  # never follow a link out of our folders
        if job_id is not None and job_output_needed(session, job_id=job_id):
            continue  # still another version's files
        resolved = folder.resolve()
        if any(resolved.is_relative_to(root) and resolved != root for root in roots):
            shutil.rmtree(resolved, ignore_errors=True)
    if files:  # the id-derived folder of the model itself (downloads), now empty or orphaned
        shutil.rmtree(settings.models_dir / str(int(model_id)), ignore_errors=True)


def update_version(
    session: Session,
    *,
    actor: User,
    version_id: int,
    tags: list[str] | None,
    notes: str | None,
    ip: str | None,
) -> tuple[RegisteredModel, ModelVersion]:
    model, version = get_version(session, actor=actor, version_id=version_id, change=True)
    if tags is not None:
        clean = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
        version.tags = clean
    if notes is not None:
        version.notes = notes
    audit.record(
        session,
        action=AuditAction.model_version_updated,
        actor=actor,
        target_type="model_version",
        target_id=version.id,
        ip=ip,
        details={"tags": tags is not None, "notes": notes is not None},
    )
    session.commit()
    return model, version


# ---- versions from jobs ---------------------------------------------------------------------------------


def _job_output(settings: Settings, job: Job) -> Path:
    return Path(job.run_dir or settings.runs_dir / str(job.id)) / "output"


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
        if (
            version.weights == "adapter"
        ):  # trained on top of an adapter: same base, that adapter is the parent
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


def _sanitise(text: str, *, keep_colon: bool) -> str:
    allowed = r"[^A-Za-z0-9._:/@-]+" if keep_colon else r"[^A-Za-z0-9._/@-]+"
    return re.sub(allowed, "-", text).strip("-") or "model"


def fine_tuned_name(base: str, suffix: str | None, job_id: int) -> str:
    tail = f":{_sanitise(suffix or 'lf', keep_colon=False)[:64]}:{job_id}"
    head = _sanitise(base, keep_colon=True)[: 200 - len("ft:") - len(tail)]
    return f"ft:{head}{tail}"


def _job_version(
    session: Session, model: RegisteredModel, *, job: Job, output: Path, weights: str, created_by: int
) -> ModelVersion:
    """A ready version of `model` whose files are the job's output (no copy), made current."""
    spec = job.spec or {}
    lineage = _lineage(session, spec)
    lineage.pop("display", None)
    version = _new_version(
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
        size_bytes=model_files.folder_size(output),
        created_by=created_by,
        **lineage,
    )
    model.current_version_id = version.id
    return version


def register_job_result(session: Session, *, settings: Settings, job: Job) -> ModelVersion | None:
    """Called in the transaction that moves `job` to succeeded (no commit here)."""
    spec = job.spec or {}
    stage = spec.get("stage", "sft")
    if stage == MERGE_STAGE:
        return _finish_merge(session, settings=settings, job=job)
    if stage not in TRAINING_STAGES:
        return None
    existing = session.scalar(select(ModelVersion).where(ModelVersion.source_job_id == job.id).limit(1))
    if existing is not None:  # the same final event seen twice (another server, a restart)
        return existing
    output = _job_output(settings, job)
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
        description=f"Fine-tuned by job {job.id} ({job.name})",
        shared=False,
        source="job",
        source_ref=str(job.id),
    )
    session.add(model)
    session.flush()
    version = _job_version(session, model, job=job, output=output, weights=weights, created_by=job.owner_id)
    audit.record(
        session,
        action=AuditAction.model_registered,
        actor=None,
        target_type="model",
        target_id=model.id,
        details={"name": name, "job_id": job.id},
    )
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
    output = _job_output(settings, job)
    weights = model_files.weights_kind(output)
    if weights is None or job.files_removed_at is not None:
        raise Conflict(
            "the job's output is gone",
            code="job_output_missing",
            fields=[FieldIssue(field="job_id", message="no adapter or weights in its output")],
        )
    version = _job_version(session, model, job=job, output=output, weights=weights, created_by=actor.id)
    audit.record(
        session,
        action=AuditAction.model_version_created,
        actor=actor,
        target_type="model",
        target_id=model.id,
        ip=ip,
        details={"version_id": version.id, "job_id": job.id},
    )
    session.commit()
    return version


# ---- merge ------------------------------------------------------------------------------------------------


def request_merge(
    session: Session, *, settings: Settings, actor: User, version_id: int, ip: str | None
) -> tuple[Job, ModelVersion]:
    """Queue a merge job for an adapter version; the new `full` version appears now as `merging` and
    becomes `ready` (and current) when the job succeeds."""
    model, version = get_version(session, actor=actor, version_id=version_id, change=True)
    if version.weights != "adapter":
        raise Conflict("only adapter versions can be merged", code="not_an_adapter")
    _ensure_ready(session, model, version)
    load_paths(session, settings=settings, version=version)  # the files must be there now
    source = f"{model.name}@v{version.number}"
    job = Job(
        owner_id=actor.id,
        name=f"merge {source}",
        status=JobStatus.draft.value,
        priority=0,
        spec={"stage": MERGE_STAGE, "model_name_or_path": source, "devices": "cpu"},
        executor=settings.executor,
    )
    session.add(job)
    session.flush()
    job.run_dir = str(settings.runs_dir / str(job.id))
    merged = _new_version(
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
    audit.record(
        session,
        action=AuditAction.job_created,
        actor=actor,
        target_type="job",
        target_id=job.id,
        ip=ip,
        details={"name": job.name, "merge_version_id": version.id},
    )
    audit.record(
        session,
        action=AuditAction.model_merge_requested,
        actor=actor,
        target_type="model",
        target_id=model.id,
        ip=ip,
        details={"version_id": version.id, "job_id": job.id, "new_version_id": merged.id},
    )
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


def _finish_merge(session: Session, *, settings: Settings, job: Job) -> ModelVersion | None:
    target_id = (job.spec or {}).get(MERGE_TARGET_KEY)
    version = session.get(ModelVersion, target_id) if isinstance(target_id, int) else None
    if version is None or version.source_job_id != job.id:
        return None
    output = _job_output(settings, job)
    if model_files.weights_kind(output) != "full":
        version.status = "failed"
        return None
    version.path = str(output)
    version.status = "ready"
    version.info = model_files.detect_info(output)
    version.size_bytes = model_files.folder_size(output)
    model = session.get(RegisteredModel, version.model_id)
    if model is not None:
        model.current_version_id = version.id
    return version


# ---- retention and downloads -----------------------------------------------------------------------------


def job_output_needed(session: Session, *, job_id: int) -> bool:
    """Whether a registered version's files are the job's output (retention must keep it)."""
    query = select(ModelVersion.id).where(
        ModelVersion.source_job_id == job_id, ModelVersion.path.is_not(None)
    )
    return session.scalar(query.limit(1)) is not None


def archive(
    session: Session, *, settings: Settings, actor: User, version_id: int
) -> tuple[str, Iterator[bytes]]:
    """(file name, .tar.gz stream) of a version's folder."""
    model, version = get_version(session, actor=actor, version_id=version_id)
    folder = version_folder(settings, version)
    if effective_status(session, version) != "ready" or not _has_files(folder):
        raise Conflict("this version has no files on the server to download", code="model_files_missing")
    stem = f"{_sanitise(model.name.replace('/', '-').replace(':', '-'), keep_colon=False)}-v{version.number}"
    return f"{stem}.tar.gz", model_files.archive_stream(folder, stem)
