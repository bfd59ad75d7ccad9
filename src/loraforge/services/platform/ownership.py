"""THE ownership policy. Every owned resource (API keys, datasets, jobs, models, chats, files…) asks here.

A resource is reachable by its owner, and by staff roles the caller names for that action: e.g.
jobs will pass `staff_may={Role.admin, Role.operator}` for cancel, API keys pass nothing (private).
Someone who may not reach a resource gets NotFound by default, so IDs do not reveal what exists:
with the same code the service uses for an id that does not exist (`job_not_found`, …), because a
different code for "not yours" would tell the caller that the id is taken.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from loraforge.db.models import Role, User
from loraforge.errors import Forbidden, NotFound

STAFF = frozenset({Role.admin, Role.operator})
ADMIN_ONLY = frozenset({Role.admin})


def not_found_code(resource: str) -> str:
    """The code of the 404 for `resource` ("API key" → `api_key_not_found`), absent or not visible.
    A service whose absent-id code differs passes its own `code=` to `ensure_access`."""
    return re.sub(r"[^a-z0-9]+", "_", resource.lower()).strip("_") + "_not_found"


def can_access(actor: User, owner_id: int | None, *, staff_may: Collection[Role] = ()) -> bool:
    """Whether `actor` may act on a resource owned by `owner_id` (None: owned by nobody)."""
    if actor.disabled:
        return False
    if owner_id is not None and actor.id == owner_id:
        return True
    return actor.role_enum in staff_may


def ensure_access(
    actor: User,
    owner_id: int | None,
    *,
    staff_may: Collection[Role] = (),
    resource: str = "resource",
    reveal: bool = False,
    code: str | None = None,
) -> None:
    """Raise unless `actor` may act on the resource; NotFound hides its existence, unless `reveal`.

    The NotFound is the one the service raises for an absent id: `code`, by default
    `not_found_code(resource)`.
    """
    if can_access(actor, owner_id, staff_may=staff_may):
        return
    if reveal:
        raise Forbidden(f"you may not access this {resource}")
    raise NotFound(f"{resource} not found", code=code or not_found_code(resource))


def ensure_readable(
    actor: User,
    owner_id: int | None,
    *,
    shared: bool,
    staff_may: Collection[Role] = (),
    resource: str = "resource",
    code: str | None = None,
) -> None:
    """Read access for resources that can be shared (models, templates, prompts, providers).

    Shared ones (and owner_id None: the platform's own) are readable by every active user; the rest
    follow `ensure_access`. Changing a shared resource still needs `ensure_access`.
    """
    if not actor.disabled and (shared or owner_id is None):
        return
    ensure_access(actor, owner_id, staff_may=staff_may, resource=resource, code=code)


def owner_scope(actor: User, *, staff_may: Collection[Role] = ()) -> int | None:
    """For list queries: the owner id to filter on, or None when the actor may see everyone's."""
    return None if actor.role_enum in staff_may else actor.id


def ensure_role(actor: User, allowed: Collection[Role]) -> None:
    """Raise Forbidden unless the actor has one of `allowed` roles (for non-owned actions)."""
    if actor.disabled or actor.role_enum not in allowed:
        raise Forbidden("your role does not allow this", code="forbidden")
