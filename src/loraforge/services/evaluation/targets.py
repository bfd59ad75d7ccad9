"""The models of an evaluation: the names `/v1` speaks, resolved when the evaluation is created (pinned,
checked readable) and again when its job launches (folders, provider URL and key).

A name is `demo-tiny`, a registered model (`<name>` pins its current version as `<name>@v<n>`), or a
provider model `<provider>/<model>`. Registered names are tried first: a hub-like registry name may
contain a slash too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.models import ModelVersion, User
from loraforge.engine.chat_templates import TEMPLATE_NAMES
from loraforge.errors import FieldIssue, NotFound, ServiceError
from loraforge.services.models import resolution
from loraforge.services.models.catalog import can_read
from loraforge.services.models.refs import DEMO_MODEL, ensure_demo_model
from loraforge.services.models.versions import VERSION_SUFFIX, ensure_ready
from loraforge.services.platform import outbound
from loraforge.services.serving import providers
from loraforge.settings import Settings

DEMO, REGISTERED, PROVIDER = "demo", "registered", "provider"


@dataclass(frozen=True)
class Target:
    name: str  # as stored: demo-tiny | <name>@v<n> | <provider>/<model>
    kind: str  # demo | registered | provider
    model_version_id: int | None = None
    provider_id: int | None = None

    @property
    def identity(self) -> str:
        """What the cache key knows the model by: the version or the provider row, never a name that
        can be renamed or re-pointed."""
        if self.kind == REGISTERED:
            return f"version:{self.model_version_id}"
        if self.kind == PROVIDER:
            return f"provider:{self.provider_id}:{self.name.partition('/')[2]}"
        return DEMO_MODEL


def stored_kind(name: str) -> str:
    """The kind of a name as `resolve` stored it (pinned registered names end in `@v<n>`)."""
    if name == DEMO_MODEL:
        return DEMO
    if VERSION_SUFFIX.match(name):
        return REGISTERED
    return PROVIDER


def _not_found(name: str, field: str) -> NotFound:
    return NotFound(
        f"the model {name!r} does not exist or you do not have access to it",
        code="model_not_found",
        fields=[FieldIssue(field, "no such model that you may use")],
    )


def resolve(session: Session, *, settings: Settings, actor: User, name: str, field: str) -> Target:
    """`name` as the actor may use it now; 404 model_not_found naming `field` otherwise."""
    name = name.strip()
    if name == DEMO_MODEL:
        return Target(name=DEMO_MODEL, kind=DEMO)
    found = resolution.lookup(session, name)
    if found is not None and can_read(actor, found[0]):
        model, version = found
        try:
            ensure_ready(session, model, version)
        except ServiceError as exc:
            raise type(exc)(exc.message, code=exc.code, fields=[FieldIssue(field, exc.message)]) from None
        return Target(name=f"{model.name}@v{version.number}", kind=REGISTERED, model_version_id=version.id)
    if "/" in name:
        try:
            endpoint = providers.resolve_model(session, settings=settings, actor=actor, name=name)
        except NotFound:
            raise _not_found(name, field) from None
        except ServiceError as exc:  # the provider's URL is refused now
            raise type(exc)(exc.message, code=exc.code, fields=[FieldIssue(field, exc.message)]) from None
        return Target(name=name, kind=PROVIDER, provider_id=endpoint.provider_id)
    raise _not_found(name, field)


# ---- at launch --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loadable:
    """How the engine reaches a model: local folders (+ chat template), or an OpenAI-compatible URL."""

    local: dict[str, Any] | None  # model_name_or_path, adapter_name_or_path, template
    provider: dict[str, str] | None  # base_url, model
    api_key: str | None = None


def _template(version: ModelVersion) -> str:
    """The chat template the version was trained with (what its answers expect), else the tokenizer's."""
    template = (version.spec or {}).get("template")
    return template if isinstance(template, str) and template in TEMPLATE_NAMES else "auto"


def loadable(session: Session, *, settings: Settings, owner: User, name: str) -> Loadable:
    """The stored name as the engine loads it, checked again against the owner's access and the
    outbound policy (a provider URL may have become refused since the evaluation was created)."""
    if name == DEMO_MODEL:
        demo = str(ensure_demo_model(settings))
        return Loadable(
            local={"model_name_or_path": demo, "adapter_name_or_path": None, "template": "auto"},
            provider=None,
        )
    found = resolution.pinned_version(session, name)
    if found is not None:
        if not can_read(owner, found[0]):
            raise NotFound(
                f"the model {name!r} is no longer readable by the owner", code="model_not_accessible"
            )
        base, adapter = resolution.load_paths(session, settings=settings, version=found[1])
        local = {
            "model_name_or_path": base,
            "adapter_name_or_path": str(adapter) if adapter is not None else None,
            "template": _template(found[1]),
        }
        return Loadable(local=local, provider=None)
    if "@v" in name and "/" not in name:
        raise RuntimeError(f"the registered model {name!r} no longer exists")
    endpoint = providers.resolve_model(session, settings=settings, actor=owner, name=name)
    base_url = outbound.check_url(
        outbound.policy_for(settings),
        endpoint.base_url,
        field="provider",
        allow_query=False,
        allow_fragment=False,
    )
    return Loadable(
        local=None, provider={"base_url": base_url, "model": endpoint.model}, api_key=endpoint.api_key
    )
