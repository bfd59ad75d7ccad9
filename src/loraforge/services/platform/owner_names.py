"""Names people give things: how long one may be, and names unique per owner (templates, prompts): one
check before writing, one 409 on a concurrent insert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.errors import Conflict, FieldIssue

# The longest name of a job, dataset, model, template, prompt or conversation: room for a descriptive
# name, still one line in a table row, a toast or a /v1 model list (`api.schemas.common.Name`).
NAME_MAX_LENGTH = 100


def clip_name(text: str) -> str:
    """A name the server makes up (a copy's, an upload's, a fine-tuned model's) cut to what a person
    may type, so renaming it later with the same text is not refused."""
    return text.strip()[:NAME_MAX_LENGTH].rstrip()


@dataclass(frozen=True)
class OwnerUniqueName:
    """`model` has `id`, `owner_id` and `name` columns with a unique (owner_id, name) constraint."""

    model: Any
    noun: str  # "template", "prompt": the error says "you already have a <noun> named …"

    def taken(self, name: str) -> Conflict:
        return Conflict(
            f"you already have a {self.noun} named {name!r}",
            code=f"{self.noun}_name_taken",
            fields=[FieldIssue(field="name", message=f"already used by another of your {self.noun}s")],
        )

    def ensure_free(self, session: Session, *, owner_id: int, name: str, exclude: int | None = None) -> None:
        query = select(self.model.id).where(self.model.owner_id == owner_id, self.model.name == name)
        if exclude is not None:
            query = query.where(self.model.id != exclude)
        if session.scalar(query.limit(1)) is not None:
            raise self.taken(name)

    def commit(self, session: Session, name: str) -> None:
        """Commit; a concurrent insert of the same (owner, name) surfaces as the same 409."""
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise self.taken(name) from None
