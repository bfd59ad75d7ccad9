"""The model registry's catalog: model names, who may see or change a model, listing and reading
models and versions (with their lineage resolved for the API), and a version's files as a download.

Access (`services.platform.ownership`): read = owner, shared models for everyone, and operators/admins; change
(rename, share, delete, new versions, merge) = the owner, and admins for any model. Readers who may
not change get 403 `not_owner`; strangers get 404 so ids reveal nothing.

Registering, changing and deleting are `services.models.manage`'s; names to loadable files are
`services.models.resolution`'s; versions made by jobs are `services.models.results`'.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from loraforge.db.models import Dataset, DatasetVersion, Job, ModelVersion, RegisteredModel, User
from loraforge.errors import Conflict, FieldIssue, Forbidden, InvalidInput, NotFound
from loraforge.services.models.refs import DEMO_MODEL
from loraforge.services.models.versions import (
    VERSION_SUFFIX,
    effective_status,
    has_files,
    version_folder,
)
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.archives import tar_gz_stream
from loraforge.services.platform.audit import AuditAction
from loraforge.services.platform.owner_names import NAME_MAX_LENGTH
from loraforge.settings import Settings

STAFF = ownership.STAFF
_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._:/@-]{{0,{NAME_MAX_LENGTH - 1}}}$")


# ---- names and access ---------------------------------------------------------------------------------


def check_name(name: str, *, field: str = "name") -> str:
    """A user-chosen model name: the `/v1` model id, so it must be unambiguous there."""
    name = name.strip()
    problem: str | None = None
    if not _NAME.match(name):
        allowed = "letters, digits and . _ : / @ -, starting with a letter or digit"
        problem = f"1-{NAME_MAX_LENGTH} characters: {allowed}"
    elif VERSION_SUFFIX.match(name):
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


def ensure_name_free(session: Session, name: str, *, except_id: int | None = None) -> None:
    query = select(RegisteredModel.id).where(RegisteredModel.name == name)
    found = session.scalar(query)
    if found is not None and found != except_id:
        raise Conflict(
            f"a model named {name!r} already exists",
            code="model_name_taken",
            fields=[FieldIssue(field="name", message="already taken")],
        )


def safe_name(text: str, *, keep_colon: bool) -> str:
    """`text` with every run of characters a model name (or, without `keep_colon`, a file name) may
    not hold replaced by '-'."""
    allowed = r"[^A-Za-z0-9._:/@-]+" if keep_colon else r"[^A-Za-z0-9._/@-]+"
    return re.sub(allowed, "-", text).strip("-") or "model"


def can_read(actor: User, model: RegisteredModel) -> bool:
    if actor.disabled:
        return False
    return model.shared or ownership.can_access(actor, model.owner_id, staff_may=STAFF)


def can_change(actor: User, model: RegisteredModel) -> bool:
    return ownership.can_access(actor, model.owner_id, staff_may=ownership.ADMIN_ONLY)


def visible_conditions(actor: User) -> list[Any]:
    """WHERE conditions on `RegisteredModel` selecting the models `actor` may read."""
    if actor.disabled:
        return [RegisteredModel.id == -1]
    if actor.role_enum in STAFF:
        return []
    return [or_(RegisteredModel.owner_id == actor.id, RegisteredModel.shared.is_(True))]


def get_model(session: Session, *, actor: User, model_id: int, change: bool = False) -> RegisteredModel:
    model = session.get(RegisteredModel, model_id)
    if model is None or not can_read(actor, model):
        raise NotFound("model not found", code="model_not_found")
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


def record(
    session: Session,
    action: AuditAction,
    *,
    actor: User | None,
    model_id: int,
    details: dict[str, Any],
    ip: str | None = None,
) -> None:
    """Audit a change of a model (no actor: the system did it); it commits with the change."""
    audit.record(
        session, action=action, actor=actor, target_type="model", target_id=model_id, ip=ip, details=details
    )


# ---- listing and reading ----------------------------------------------------------------------------------


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
    conditions = visible_conditions(actor)
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
        "format": version.format,
        "quantization": version.quantization,
        "sha256": version.sha256,
        "verification": version.verification,
        "export": (version.info or {}).get("export"),
        "created_by": version.created_by,
        "created_at": version.created_at,
    }


def archive(
    session: Session, *, settings: Settings, actor: User, version_id: int
) -> tuple[str, Iterator[bytes]]:
    """(file name, .tar.gz stream) of a version's folder."""
    model, version = get_version(session, actor=actor, version_id=version_id)
    folder = version_folder(settings, version)
    # An export's folder holds no config.json (a GGUF, an ONNX graph): any files there count.
    present = has_files(folder) if version.format == "safetensors" else folder.is_dir()
    if effective_status(session, version) != "ready" or not present:
        raise Conflict("this version has no files on the server to download", code="model_files_missing")
    stem = f"{safe_name(model.name.replace('/', '-').replace(':', '-'), keep_colon=False)}-v{version.number}"
    return f"{stem}.tar.gz", tar_gz_stream(folder, stem)
