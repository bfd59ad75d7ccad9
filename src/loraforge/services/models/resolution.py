"""From a model name to files that load: `/v1` ids to versions, versions to base and adapter folders,
what `/v1/models` lists, and the `<name>@v<number>` pins of training specs.

Contract used by others (keep these signatures):
- `resolve_for_inference(session, settings=, actor=, name=) -> ServedModel` — `name` is a `/v1/models`
  id (`demo-tiny`, a registered model's name, or `<name>@v<number>`); NotFound(code="model_not_found")
  when it does not exist or the actor may not read it.
- `visible_models(session, settings=, actor=) -> list[VisibleModel]` — what `/v1/models` lists.
- `fine_tuned_model_name(session, job_id=) -> str | None` — the registered name a job produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import ModelVersion, RegisteredModel, User
from loraforge.errors import Conflict, NotFound
from loraforge.inference.types import ServedModel
from loraforge.services.models import files as model_files
from loraforge.services.models.catalog import can_read, visible_conditions
from loraforge.services.models.refs import DEMO_MODEL, ensure_demo_model
from loraforge.services.models.versions import VERSION_SUFFIX, ensure_ready, ensure_servable, version_folder
from loraforge.settings import Settings

_DEMO_CREATED = datetime(2025, 1, 1, tzinfo=UTC)  # demo-tiny is virtual: a fixed, stable timestamp


@dataclass(frozen=True)
class VisibleModel:
    name: str
    owner: str  # `owned_by` in /v1/models: "loraforge" for platform models, else the owner's username
    created: datetime
    kind: str  # base | finetuned | provider


def load_paths(session: Session, *, settings: Settings, version: ModelVersion) -> tuple[str, Path | None]:
    """(base, adapter) to load a version: a folder or hub id for the base, the adapter folder or None."""
    model = session.get(RegisteredModel, version.model_id)
    assert model is not None  # FK cascade: a version never outlives its model
    ensure_servable(model, version)
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
        return str(ensure_demo_model(settings)), folder
    if version.base_ref:
        return version.base_ref, folder
    raise Conflict(f"{model.name}@v{version.number} does not name its base model", code="model_files_missing")


# ---- lookups by name ----------------------------------------------------------------------------------


def lookup(session: Session, name: str) -> tuple[RegisteredModel, ModelVersion] | None:
    """A registered model by `/v1` id: its name (current version) or `<name>@v<number>`."""
    model = session.scalar(select(RegisteredModel).where(RegisteredModel.name == name))
    number: int | None = None
    if model is None:
        match = VERSION_SUFFIX.match(name)
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
        demo = ensure_demo_model(settings)
        return ServedModel(name=name, model_id=None, version_id=None, owner_id=None, base=str(demo))
    found = lookup(session, name)
    if found is None or not can_read(actor, found[0]):
        raise NotFound(
            f"the model {name!r} does not exist or you do not have access to it", code="model_not_found"
        )
    model, version = found
    ensure_servable(model, version)  # 409 model_not_servable: an export, whatever its state
    ensure_ready(session, model, version)
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
        .where(*visible_conditions(actor))
        .order_by(RegisteredModel.created_at, RegisteredModel.id)
    )
    for model, username in session.execute(query).all():
        out.append(VisibleModel(name=model.name, owner=username, created=model.created_at, kind=model.kind))
    return out


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
    ensure_servable(model, version)
    ensure_ready(session, model, version)
    return f"{model.name}@v{version.number}", version


def pinned_version(session: Session, value: Any) -> tuple[RegisteredModel, ModelVersion] | None:
    """The version a stored spec's `<name>@v<number>` names (hub ids never contain '@')."""
    if not isinstance(value, str) or not VERSION_SUFFIX.match(value):
        return None
    return lookup(session, value)
