"""The system prompt library: named prompts with `{{variable}}` placeholders, private or shared.

Access (`services.platform.ownership`): the owner reads and changes; a shared prompt is readable by every
user but changed or deleted only by its owner (others who can see it get 403 `not_owner`; anyone
else 404). Names are unique per owner. Variables are detected on save, in order of first appearance.
Rendering substitutes in one pass, so a value containing `{{x}}` is left as written.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from loraforge.db.models import PromptTemplate, User
from loraforge.errors import FieldIssue, InvalidInput, NotFound
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.services.platform.changes import refuse_nulls
from loraforge.services.platform.owned_items import ItemPage, Library
from loraforge.services.platform.owner_names import OwnerUniqueName

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def variables_of(content: str) -> list[str]:
    """The placeholder names in `content`, each once, in order of first appearance."""
    return list(dict.fromkeys(match.group(1) for match in _PLACEHOLDER.finditer(content)))


def render_text(content: str, variables: dict[str, str]) -> str:
    missing = [name for name in variables_of(content) if name not in variables]
    if missing:
        raise InvalidInput(
            f"missing variable(s): {', '.join(missing)}",
            code="missing_variables",
            fields=[FieldIssue(field=f"variables.{name}", message="no value given") for name in missing],
        )
    return _PLACEHOLDER.sub(lambda match: variables[match.group(1)], content)


def _can_read(actor: User, prompt: PromptTemplate) -> bool:
    try:
        ownership.ensure_readable(actor, prompt.owner_id, shared=prompt.shared, resource="prompt")
    except NotFound:
        return False
    return True


# Changed and deleted by the owner only ("only the owner may change this prompt").
PROMPTS = Library(
    PromptTemplate, "prompt", can_read=_can_read, deleted=AuditAction.prompt_deleted,
    shared_where=PromptTemplate.shared.is_(True),
)  # fmt: skip


def get_prompt(session: Session, *, actor: User, prompt_id: int, write: bool = False) -> PromptTemplate:
    return PROMPTS.get(session, actor=actor, item_id=prompt_id, write=write)


def list_prompts(
    session: Session, *, actor: User, scope: str, q: str | None, offset: int, limit: int
) -> ItemPage[PromptTemplate]:
    """`mine`: own; `shared`: everyone's shared ones; `all`: own + shared. Most recently changed first."""
    query = select(PromptTemplate).where(PROMPTS.scope_where(actor, scope))
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                PromptTemplate.name.ilike(pattern, escape="\\"),
                PromptTemplate.content.ilike(pattern, escape="\\"),
            )
        )
    return PROMPTS.newest_first(session, query, offset=offset, limit=limit)


_NAMES = OwnerUniqueName(PromptTemplate, "prompt")


def create_prompt(
    session: Session, *, actor: User, name: str, content: str, shared: bool, ip: str | None
) -> PromptTemplate:
    _NAMES.ensure_free(session, owner_id=actor.id, name=name)
    prompt = PromptTemplate(
        owner_id=actor.id, name=name, content=content, variables=variables_of(content), shared=shared
    )
    session.add(prompt)
    session.flush()
    audit.record(
        session, action=AuditAction.prompt_created, actor=actor, target_type="prompt", target_id=prompt.id,
        ip=ip, details={"name": name, "shared": shared},
    )  # fmt: skip
    _NAMES.commit(session, name)
    return prompt


def update_prompt(
    session: Session, *, actor: User, prompt_id: int, changes: dict[str, Any], ip: str | None
) -> PromptTemplate:
    """Apply name, content, shared (the owner only)."""
    refuse_nulls(changes, ("name", "content", "shared"))
    prompt = get_prompt(session, actor=actor, prompt_id=prompt_id, write=True)
    if "name" in changes and changes["name"] != prompt.name:
        _NAMES.ensure_free(session, owner_id=prompt.owner_id, name=changes["name"], exclude=prompt.id)
        prompt.name = changes["name"]
    if "content" in changes:
        prompt.content = changes["content"]
        prompt.variables = variables_of(changes["content"])
    if "shared" in changes:
        prompt.shared = bool(changes["shared"])
    audit.record(
        session, action=AuditAction.prompt_updated, actor=actor, target_type="prompt", target_id=prompt.id,
        ip=ip, details={"fields": sorted(changes)},
    )  # fmt: skip
    _NAMES.commit(session, prompt.name)
    return prompt


def delete_prompt(session: Session, *, actor: User, prompt_id: int, ip: str | None) -> None:
    PROMPTS.delete(session, actor=actor, item_id=prompt_id, ip=ip)


def render_prompt(session: Session, *, actor: User, prompt_id: int, variables: dict[str, str]) -> str:
    prompt = get_prompt(session, actor=actor, prompt_id=prompt_id)
    return render_text(prompt.content, variables)
