"""REST routes: external OpenAI-compatible providers (`/api/providers`). Thin:
`services.serving.providers`."""

from __future__ import annotations

from fastapi import APIRouter, status

from loraforge.api.deps import ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.ids import Id
from loraforge.api.schemas.common import ErrorResponse
from loraforge.api.schemas.providers import ProviderCreate, ProviderList, ProviderPublic, ProviderUpdate
from loraforge.db.models import Provider, User
from loraforge.services.platform.changes import refuse_nulls
from loraforge.services.serving import providers
from loraforge.settings import Settings

router = APIRouter(tags=["providers"])


def _public(settings: Settings, user: User, provider: Provider) -> ProviderPublic:
    seen = providers.view(settings, user, provider)
    return ProviderPublic(
        id=provider.id,
        name=provider.name,
        base_url=provider.base_url,
        owner_id=provider.owner_id,
        shared=seen.shared,
        enabled=provider.enabled,
        has_api_key=seen.has_api_key,
        api_key_last4=seen.api_key_last4,
        models=list(provider.models or []),
        models_refreshed_at=provider.models_refreshed_at,
        created_at=provider.created_at,
        updated_at=provider.updated_at,
        editable=seen.editable,
    )


@router.get("/providers", response_model=ProviderList, operation_id="providers_list")
def list_providers(user: CurrentUser, session: SessionDep, settings: SettingsDep) -> ProviderList:
    """Shared providers and your own, by name (API keys are never returned)."""
    found = providers.list_providers(session, actor=user)
    return ProviderList(items=[_public(settings, user, p) for p in found])


@router.post(
    "/providers", response_model=ProviderPublic, status_code=status.HTTP_201_CREATED,
    operation_id="providers_create",
)  # fmt: skip
def create_provider(
    body: ProviderCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> ProviderPublic:
    """Add an OpenAI-compatible endpoint (409 `provider_name_taken`; `shared` needs an admin)."""
    provider = providers.create_provider(
        session, settings=settings, actor=user, name=body.name, base_url=body.base_url,
        api_key=body.api_key, enabled=body.enabled, shared=body.shared, ip=ip,
    )  # fmt: skip
    return _public(settings, user, provider)


@router.get("/providers/{provider_id}", response_model=ProviderPublic, operation_id="providers_get")
def get_provider(
    provider_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> ProviderPublic:
    return _public(settings, user, providers.get_provider(session, actor=user, provider_id=provider_id))


@router.patch("/providers/{provider_id}", response_model=ProviderPublic, operation_id="providers_update")
def update_provider(
    provider_id: Id,
    body: ProviderUpdate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
) -> ProviderPublic:
    """Change name, base URL, key (`null` removes it), enabled, or sharing (admins)."""
    changes = body.model_dump(exclude_unset=True)
    refuse_nulls(changes, ("name", "base_url", "enabled", "shared"), first_only=True)
    provider = providers.update_provider(
        session, settings=settings, actor=user, provider_id=provider_id, changes=changes, ip=ip
    )
    return _public(settings, user, provider)


@router.delete(
    "/providers/{provider_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="providers_delete"
)
def delete_provider(provider_id: Id, user: CurrentUser, session: SessionDep, ip: ClientIP) -> None:
    providers.delete_provider(session, actor=user, provider_id=provider_id, ip=ip)


@router.post(
    "/providers/{provider_id}/refresh-models",
    response_model=ProviderPublic,
    operation_id="providers_refresh_models",
    responses={
        502: {"model": ErrorResponse, "description": "The provider is unreachable or answered badly."}
    },
)
def refresh_models(
    provider_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep, ip: ClientIP
) -> ProviderPublic:
    """Fetch `GET <base_url>/models` and store the model ids (502 `provider_unreachable` on failure)."""
    provider = providers.refresh_models(
        session, settings=settings, actor=user, provider_id=provider_id, ip=ip
    )
    return _public(settings, user, provider)
