"""External OpenAI-compatible providers: CRUD, model refresh, and resolution for the gateway.

A provider is private to its owner, or shared with everyone (owner_id None; only admins create,
change or delete shared ones). Its models are used through the gateway as `<provider>/<model>`.
The API key is encrypted at rest (`services.platform.secret_box`) and never returned: the API shows only
whether one is set and its last four characters.

Access (`services.platform.ownership`): read = shared, or own (staff get no view of private providers: they
hold someone's credentials); change = own, or admin for shared ones (others 403, strangers 404).

The base URL obeys the outbound policy (`services.platform.outbound`): checked when saved (422 naming
`base_url`), and every connection to it (refresh, chat) is checked again. Errors from a provider say the
status, never its body: it is a server a user chose, reached from inside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.db.models import Provider, Role, User
from loraforge.errors import Conflict, FieldIssue, Forbidden, InvalidInput, NotFound, Unavailable
from loraforge.inference import upstream
from loraforge.inference.types import Endpoint
from loraforge.services.platform import audit, outbound, ownership, secret_box
from loraforge.services.platform.audit import AuditAction
from loraforge.services.platform.outbound_transport import GuardedTransport
from loraforge.services.platform.owned_items import Library
from loraforge.settings import Settings

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
MAX_URL_LENGTH = outbound.MAX_URL_LENGTH


@dataclass(frozen=True)
class ProviderView:
    """A provider as the caller may see it (never the key itself)."""

    provider: Provider
    shared: bool
    editable: bool
    has_api_key: bool
    api_key_last4: str | None


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", fields=[FieldIssue(field=field, message=message)])


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise _invalid(
            "name", "lowercase letters, digits, '-' and '_', starting with a letter or digit (max 64)"
        )
    return name


# Credentials in the URL would be stored and shown in plain text: they belong in api_key.
_URL_RULES: dict[str, Any] = {
    "field": "base_url", "allow_query": False, "allow_fragment": False, "credentials_hint": "; use api_key",
}  # fmt: skip


def check_base_url(settings: Settings, base_url: str) -> str:
    """An http(s) URL without credentials, query or fragment, to a destination the outbound policy
    allows; stored without a trailing slash."""
    return outbound.check_url(outbound.policy_for(settings), base_url, **_URL_RULES).rstrip("/")


@dataclass(frozen=True)
class ProviderEndpoint(Endpoint):
    """An endpoint on a user-chosen server: the gateway connects to it only through `policy`."""

    policy: outbound.OutboundPolicy = field(default_factory=outbound.OutboundPolicy)


def _is_shared(provider: Provider) -> bool:
    return provider.owner_id is None


def _can_read(actor: User, provider: Provider) -> bool:
    return not actor.disabled and (_is_shared(provider) or ownership.can_access(actor, provider.owner_id))


def _can_write(actor: User, provider: Provider) -> bool:
    if _is_shared(provider):
        return not actor.disabled and actor.role_enum is Role.admin
    return ownership.can_access(actor, provider.owner_id)


def view(settings: Settings, actor: User, provider: Provider) -> ProviderView:
    last4: str | None = None
    if provider.api_key_encrypted:
        try:
            last4 = secret_box.decrypt(settings, provider.api_key_encrypted)[-4:]
        except Unavailable:
            last4 = None  # the key changed: the UI shows "set" without the digits
    return ProviderView(
        provider=provider,
        shared=_is_shared(provider),
        editable=PROVIDERS.is_editable(actor, provider),
        has_api_key=bool(provider.api_key_encrypted),
        api_key_last4=last4,
    )


# Shared means owned by nobody; only admins change those.
PROVIDERS = Library(
    Provider, "provider", can_read=_can_read, deleted=AuditAction.provider_deleted,
    shared_where=Provider.owner_id.is_(None), can_write=_can_write,
    not_owner="only an admin may change a shared provider",
)  # fmt: skip


def get_provider(session: Session, *, actor: User, provider_id: int, write: bool = False) -> Provider:
    return PROVIDERS.get(session, actor=actor, item_id=provider_id, write=write)


def list_providers(session: Session, *, actor: User) -> list[Provider]:
    """Shared providers and the caller's own, by name."""
    query = select(Provider).where(PROVIDERS.scope_where(actor, "all"))
    return list(session.scalars(query.order_by(Provider.name)))


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"a provider named {name!r} already exists",
        code="provider_name_taken",
        fields=[FieldIssue(field="name", message="already used by another provider")],
    )


def _ensure_name_free(session: Session, *, name: str, exclude: int | None = None) -> None:
    query = select(Provider.id).where(Provider.name == name)
    if exclude is not None:
        query = query.where(Provider.id != exclude)
    if session.scalar(query.limit(1)) is not None:
        raise _name_taken(name)


def _commit_unique(session: Session, name: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise _name_taken(name) from None


def _ensure_may_share(actor: User) -> None:
    if actor.role_enum is not Role.admin:
        raise Forbidden("only admins may share a provider with everyone", code="forbidden")


def create_provider(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    name: str,
    base_url: str,
    api_key: str | None,
    enabled: bool,
    shared: bool,
    ip: str | None,
) -> Provider:
    name = check_name(name)
    url = check_base_url(settings, base_url)
    if shared:
        _ensure_may_share(actor)
    _ensure_name_free(session, name=name)
    provider = Provider(
        owner_id=None if shared else actor.id,
        name=name,
        base_url=url,
        api_key_encrypted=secret_box.encrypt(settings, api_key) if api_key else None,
        enabled=enabled,
        models=[],
    )
    session.add(provider)
    session.flush()
    audit.record(
        session, action=AuditAction.provider_created, actor=actor, target_type="provider",
        target_id=provider.id, ip=ip, details={"name": name, "shared": shared, "base_url": url},
    )  # fmt: skip
    _commit_unique(session, name)
    return provider


def update_provider(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    provider_id: int,
    changes: dict[str, Any],
    ip: str | None,
) -> Provider:
    """Apply the given fields (name, base_url, api_key (None clears it), enabled, shared)."""
    provider = get_provider(session, actor=actor, provider_id=provider_id, write=True)
    if "name" in changes and changes["name"] != provider.name:
        name = check_name(str(changes["name"]))
        _ensure_name_free(session, name=name, exclude=provider.id)
        provider.name = name
    if "base_url" in changes:
        url = check_base_url(settings, str(changes["base_url"]))
        if url != provider.base_url:
            provider.base_url = url
            # Another server: the old model list says nothing about it.
            provider.models = []
            provider.models_refreshed_at = None
    if "api_key" in changes:
        key = changes["api_key"]
        provider.api_key_encrypted = secret_box.encrypt(settings, key) if key else None
    if "enabled" in changes:
        provider.enabled = bool(changes["enabled"])
    if "shared" in changes and bool(changes["shared"]) != _is_shared(provider):
        _ensure_may_share(actor)
        # Shared means owned by nobody; taking it back makes the admin who did it the owner.
        provider.owner_id = None if changes["shared"] else actor.id
    audit.record(
        session, action=AuditAction.provider_updated, actor=actor, target_type="provider",
        target_id=provider.id, ip=ip, details={"fields": sorted(changes)},
    )  # fmt: skip
    _commit_unique(session, provider.name)
    return provider


def delete_provider(session: Session, *, actor: User, provider_id: int, ip: str | None) -> None:
    PROVIDERS.delete(session, actor=actor, item_id=provider_id, ip=ip)


def _recheck_syntax(base_url: str) -> None:
    """A URL saved before today's rules (say with a trailing `#`) is refused at use, like a new one."""
    try:
        outbound.parse_url(base_url, **_URL_RULES)
    except InvalidInput as exc:
        raise outbound.OutboundRefused(exc.message, fields=exc.fields) from None


def _api_key(settings: Settings, provider: Provider) -> str | None:
    return secret_box.decrypt(settings, provider.api_key_encrypted) if provider.api_key_encrypted else None


def refresh_models(
    session: Session, *, settings: Settings, actor: User, provider_id: int, ip: str | None
) -> Provider:
    """Ask the provider for its models (`GET <base_url>/models`) and store their ids.

    Failures are 502 `provider_unreachable` with the status class (never the provider's body); a base
    URL the outbound policy refuses now (saved before, or its name resolves elsewhere) is 422
    `destination_not_allowed` naming `base_url`. The stored list is left as it was.
    """
    provider = get_provider(session, actor=actor, provider_id=provider_id, write=True)
    api_key = _api_key(settings, provider)
    base_url, label = provider.base_url, f"provider {provider.name!r}"
    # Do not hold a database transaction open across a network call of up to 15 s.
    session.commit()
    policy = outbound.policy_for(settings)
    _recheck_syntax(base_url)
    try:
        models = upstream.list_models(
            base_url, api_key, label=label, transport=GuardedTransport(policy), echo=False
        )
    except upstream.UpstreamError as exc:
        raise upstream.UpstreamError(exc.message, http_status=502, code="provider_unreachable") from None
    except outbound.OutboundRefused as exc:
        message = exc.fields[0].message if exc.fields else exc.message
        raise outbound.OutboundRefused(
            f"base_url: {message}", fields=[FieldIssue(field="base_url", message=message)]
        ) from None
    provider.models = models
    provider.models_refreshed_at = datetime.now(UTC)
    audit.record(
        session, action=AuditAction.provider_updated, actor=actor, target_type="provider",
        target_id=provider.id, ip=ip, details={"refreshed_models": len(models)},
    )  # fmt: skip
    session.commit()
    return provider


# ---- the gateway's view ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderModel:
    name: str  # `<provider>/<model>`
    provider: Provider


def usable_models(session: Session, *, actor: User) -> list[ProviderModel]:
    """`<provider>/<model>` for every enabled provider the caller may use (what /v1/models adds)."""
    out: list[ProviderModel] = []
    for provider in list_providers(session, actor=actor):
        if provider.enabled and not actor.disabled:
            out.extend(ProviderModel(f"{provider.name}/{model}", provider) for model in provider.models or [])
    return out


def resolve_model(session: Session, *, settings: Settings, actor: User, name: str) -> Endpoint:
    """`<provider>/<model>` → where to send it. NotFound(model_not_found) unless the provider exists,
    is enabled and readable by the caller, and (once its list was refreshed) offers that model."""
    provider_name, sep, model = name.partition("/")
    not_found = NotFound(
        f"The model {name!r} does not exist or you do not have access to it.", code="model_not_found"
    )
    if not sep or not model or not _NAME.match(provider_name):
        raise not_found
    provider = session.scalar(select(Provider).where(Provider.name == provider_name))
    if provider is None or not provider.enabled or not _can_read(actor, provider):
        raise not_found
    # An unrefreshed provider forwards any model name (some servers do not list theirs); a refreshed
    # one answers only what it listed, like /v1/models shows.
    if provider.models_refreshed_at is not None and model not in (provider.models or []):
        raise not_found
    label = f"provider {provider.name!r}"
    try:
        _recheck_syntax(provider.base_url)
    except outbound.OutboundRefused:
        raise destination_refused(label) from None
    return ProviderEndpoint(
        base_url=provider.base_url,
        model=model,
        api_key=_api_key(settings, provider),
        label=label,
        provider_id=provider.id,
        policy=outbound.policy_for(settings),
    )


def policy_of(endpoint: Endpoint) -> outbound.OutboundPolicy | None:
    """The outbound policy an endpoint's connections must obey; None for our own workers."""
    if isinstance(endpoint, ProviderEndpoint):
        return endpoint.policy
    if endpoint.provider_id is not None:  # a provider endpoint built without its policy: allow nothing
        return outbound.OutboundPolicy()
    return None


def destination_refused(label: str) -> upstream.UpstreamError:
    """What a chat through a provider whose base URL the policy refuses (now) answers: 502."""
    return upstream.UpstreamError(
        f"{label} has a base URL that is not an allowed destination", code="destination_not_allowed"
    )


def find_model(session: Session, *, actor: User, name: str) -> ProviderModel | None:
    """The listed `<provider>/<model>` for `GET /v1/models/{model}`, if the caller may use it."""
    return next((item for item in usable_models(session, actor=actor) if item.name == name), None)
