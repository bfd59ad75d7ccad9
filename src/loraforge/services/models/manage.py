"""Changing the model registry: registering base models (a hub id, fetched in the background, or a
server folder), renaming and sharing, a version's tags and notes, and deleting a model with the
files the registry owns (`services.models.versions`). Access rules are `services.models.catalog`'s.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import PENDING_OR_ACTIVE, Deployment, Job, ModelVersion, RegisteredModel, User
from loraforge.db.session import Database
from loraforge.errors import Conflict, FieldIssue, Forbidden, InvalidInput, NotFound
from loraforge.services.datasets.imports import check_import_path
from loraforge.services.models import fetch as model_fetch
from loraforge.services.models import files as model_files
from loraforge.services.models.catalog import (
    STAFF,
    check_name,
    ensure_name_free,
    get_model,
    get_version,
    record,
    versions_of,
)
from loraforge.services.models.refs import is_hub_id
from loraforge.services.models.versions import job_output, job_output_needed, new_version, version_dir
from loraforge.services.platform import audit
from loraforge.services.platform.archives import folder_size
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

_LIVE_DEPLOYMENT = ("starting", "ready")


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
            folder = check_import_path(settings, ref)
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
        if not is_hub_id(ref):
            message = "a Hugging Face hub id like 'Qwen/Qwen2.5-0.5B'"
            raise InvalidInput(
                f"invalid hub id: {ref!r}",
                code="invalid_hub_id",
                fields=[FieldIssue(field="ref", message=message)],
            )
    else:  # the schema limits it; services are called from elsewhere too
        raise InvalidInput("source must be hub or local", fields=[FieldIssue("source", "hub or local")])
    ensure_name_free(session, name)
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
    version = new_version(
        session,
        model,
        weights="full",
        status="downloading" if fetch else "ready",
        path=str(folder) if folder is not None else None,
        info=model_files.detect_info(folder) if folder is not None else {"hub_id": ref},
        size_bytes=folder_size(folder) if folder is not None else None,
        created_by=actor.id,
    )
    model.current_version_id = version.id
    record(
        session,
        AuditAction.model_registered,
        actor=actor,
        model_id=model.id,
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
        ensure_name_free(session, new, except_id=model.id)
        changes["name"] = [model.name, new]
        model.name = new
    if description is not None and description != model.description:
        changes["description"] = True
        model.description = description
    if shared is not None and shared != model.shared:
        changes["shared"] = shared
        model.shared = shared
    if changes:
        record(session, AuditAction.model_updated, actor=actor, model_id=model.id, ip=ip, details=changes)
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
        if job is not None and Path(version.path) == job_output(settings, job):
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
    details = {"name": model.name, "files": files}
    record(session, AuditAction.model_deleted, actor=actor, model_id=model.id, ip=ip, details=details)
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
