"""/v1/models (OpenAI-compatible): the registry's models the caller may use, then provider models."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from sqlalchemy.orm import Session

from loraforge.api.deps import CurrentUser, SessionDep, SettingsDep
from loraforge.api.openai.errors import OPENAI_ERROR_RESPONSES
from loraforge.api.openai.schemas.models import ModelList, ModelObject
from loraforge.db.models import User
from loraforge.errors import NotFound
from loraforge.services.models import resolution
from loraforge.services.serving import providers
from loraforge.settings import Settings

router = APIRouter(tags=["openai"], responses=OPENAI_ERROR_RESPONSES)


def _unix(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment is not None else 0


def _models(session: Session, settings: Settings, user: User) -> list[ModelObject]:
    out = [
        ModelObject(id=m.name, created=_unix(m.created), owned_by=m.owner)
        for m in resolution.visible_models(session, settings=settings, actor=user)
    ]
    seen = {m.id for m in out}
    for item in providers.usable_models(session, actor=user):
        if item.name not in seen:  # the registry wins a name clash, as in resolution
            seen.add(item.name)
            moment = item.provider.models_refreshed_at or item.provider.created_at
            out.append(ModelObject(id=item.name, created=_unix(moment), owned_by=item.provider.name))
    return out


@router.get("/models", response_model=ModelList, operation_id="openai_list_models")
def list_models(user: CurrentUser, session: SessionDep, settings: SettingsDep) -> ModelList:
    """Models the caller may use in `/v1/chat/completions`."""
    return ModelList(data=_models(session, settings, user))


@router.get("/models/{model:path}", response_model=ModelObject, operation_id="openai_retrieve_model")
def retrieve_model(model: str, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> ModelObject:
    """One model by id (ids may contain `/` and `:`); `<name>@v<number>` names a version."""
    listed = {m.id: m for m in _models(session, settings, user)}
    if model in listed:
        return listed[model]
    name, at, version = model.rpartition("@v")
    if at and version.isascii() and version.isdigit() and name in listed:
        # A version of a listed model: it exists if the registry resolves it for this caller.
        resolution.resolve_for_inference(session, settings=settings, actor=user, name=model)
        return listed[name].model_copy(update={"id": model})
    raise NotFound(
        f"The model {model!r} does not exist or you do not have access to it.", code="model_not_found"
    )
