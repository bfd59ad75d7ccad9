"""Rows a user owns: fetched only by who may see them, changed only by who may change them, listed by
scope, deleted with an audit record.

- `get_private`: rows only their owner reaches (conversations, playground runs); anyone else 404.
- `Library`: named items that are private or shared with everyone (job templates, system prompts,
  providers). Each library states who may read an item and who may change it (its module's
  docstring says why); someone who may read but not change one gets 403 `not_owner`, anyone else
  404 `<noun>_not_found`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from loraforge.db.models import User
from loraforge.errors import Forbidden, NotFound
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction


class OwnedRow(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def owner_id(self) -> int | None: ...


class LibraryItem(OwnedRow, Protocol):
    @property
    def name(self) -> str: ...


R = TypeVar("R", bound=OwnedRow)
L = TypeVar("L", bound=LibraryItem)
T = TypeVar("T")  # ItemPage's: bound to LibraryItem, mypy stops matching the models to the protocol


def get_private(
    session: Session, model: type[R], item_id: int, *, actor: User, not_found: Callable[[], NotFound]
) -> R:
    """The row if `actor` owns it; anyone else, staff included (these rows are personal), `not_found()`."""
    item = session.get(model, item_id)
    if item is None or not ownership.can_access(actor, item.owner_id):
        raise not_found()
    return item


def owner_only(actor: User, item: OwnedRow) -> bool:
    """The usual write rule for library items: the owner only (staff do not edit others' items)."""
    return ownership.can_access(actor, item.owner_id)


@dataclass(frozen=True)
class ItemPage(Generic[T]):
    items: list[T]
    total: int


# eq=False: SQL expressions overload ==, so field-wise comparison would build SQL, not compare.
@dataclass(frozen=True, eq=False)
class Library(Generic[L]):
    """One kind of library item: `model` has `id`, `owner_id`, `name`, `updated_at` columns."""

    model: type[L]
    noun: str  # "prompt": 404 "prompt not found" / `prompt_not_found`, audit target type "prompt"
    can_read: Callable[[User, L], bool]
    deleted: AuditAction
    shared_where: ColumnElement[bool]  # the SQL condition "shared with everyone"
    can_write: Callable[[User, L], bool] = owner_only
    # The 403 message for someone who may read the item but not change it (None: "only the owner …").
    not_owner: str | None = None

    def get(self, session: Session, *, actor: User, item_id: int, write: bool = False) -> L:
        item = session.get(self.model, item_id)
        if item is None or not self.can_read(actor, item):
            raise NotFound(f"{self.noun} not found", code=f"{self.noun}_not_found")
        if write and not self.can_write(actor, item):
            message = self.not_owner or f"only the owner may change this {self.noun}"
            raise Forbidden(message, code="not_owner")
        return item

    def is_editable(self, actor: User, item: L) -> bool:
        return self.can_write(actor, item)

    def delete(self, session: Session, *, actor: User, item_id: int, ip: str | None) -> None:
        """Delete (the item's writers only) with an audit record naming it."""
        item = self.get(session, actor=actor, item_id=item_id, write=True)
        audit.record(
            session, action=self.deleted, actor=actor, target_type=self.noun, target_id=item.id,
            ip=ip, details={"name": item.name},
        )  # fmt: skip
        session.delete(item)
        session.commit()

    def scope_where(self, actor: User, scope: str) -> ColumnElement[bool]:
        """`mine`: the actor's own; `shared`: everyone's shared ones; otherwise (`all`) both."""
        columns: Any = self.model
        own: ColumnElement[bool] = columns.owner_id == actor.id
        if scope == "mine":
            return own
        if scope == "shared":
            return self.shared_where
        return or_(own, self.shared_where)

    def newest_first(self, session: Session, query: Select[L], *, offset: int, limit: int) -> ItemPage[L]:
        """One page of `query`, most recently changed first, and how many match in all."""
        columns: Any = self.model
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(columns.updated_at.desc(), columns.id.desc()).offset(offset).limit(limit)
        )
        return ItemPage(items=list(rows), total=total)
