"""REST routes: the system prompt library (list, create, read, update, delete, render).

Thin: `services.chat.prompts`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from loraforge.api.deps import ClientIP, CurrentUser, SessionDep
from loraforge.api.ids import Id
from loraforge.api.paging import Page, PageSize
from loraforge.api.schemas.chat import (
    PromptCreate,
    PromptPage,
    PromptPublic,
    PromptRender,
    PromptRendered,
    PromptUpdate,
)
from loraforge.db.models import PromptTemplate, User
from loraforge.services.chat import prompts as prompt_library

router = APIRouter(tags=["chat"])


def _prompt(prompt: PromptTemplate, user: User) -> PromptPublic:
    public = PromptPublic.model_validate(prompt)
    public.editable = prompt_library.PROMPTS.is_editable(user, prompt)
    return public


@router.get("/chat/prompts", response_model=PromptPage, operation_id="chat_prompts_list")
def list_prompts(
    user: CurrentUser,
    session: SessionDep,
    scope: Annotated[Literal["all", "mine", "shared"], Query(description="all = yours + shared")] = "all",
    q: Annotated[str | None, Query(max_length=200, description="Matches names and content.")] = None,
    page: Page = 1,
    page_size: PageSize = 50,
) -> PromptPage:
    """Your system prompts and the shared ones, most recently changed first."""
    found = prompt_library.list_prompts(
        session, actor=user, scope=scope, q=q, offset=(page - 1) * page_size, limit=page_size
    )
    return PromptPage(
        items=[_prompt(p, user) for p in found.items], total=found.total, page=page, page_size=page_size
    )


@router.post(
    "/chat/prompts", response_model=PromptPublic, status_code=status.HTTP_201_CREATED,
    operation_id="chat_prompts_create",
)  # fmt: skip
def create_prompt(body: PromptCreate, user: CurrentUser, session: SessionDep, ip: ClientIP) -> PromptPublic:
    """Save a system prompt; `{{name}}` placeholders become its variables (409 `prompt_name_taken`)."""
    prompt = prompt_library.create_prompt(
        session, actor=user, name=body.name, content=body.content, shared=body.shared, ip=ip
    )
    return _prompt(prompt, user)


@router.get("/chat/prompts/{prompt_id}", response_model=PromptPublic, operation_id="chat_prompts_get")
def get_prompt(prompt_id: Id, user: CurrentUser, session: SessionDep) -> PromptPublic:
    return _prompt(prompt_library.get_prompt(session, actor=user, prompt_id=prompt_id), user)


@router.patch("/chat/prompts/{prompt_id}", response_model=PromptPublic, operation_id="chat_prompts_update")
def update_prompt(
    prompt_id: Id, body: PromptUpdate, user: CurrentUser, session: SessionDep, ip: ClientIP
) -> PromptPublic:
    """Change name, content or sharing (the owner only; others who see a shared prompt: 403 `not_owner`)."""
    prompt = prompt_library.update_prompt(
        session, actor=user, prompt_id=prompt_id, changes=body.model_dump(exclude_unset=True), ip=ip
    )
    return _prompt(prompt, user)


@router.delete(
    "/chat/prompts/{prompt_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="chat_prompts_delete"
)
def delete_prompt(prompt_id: Id, user: CurrentUser, session: SessionDep, ip: ClientIP) -> None:
    prompt_library.delete_prompt(session, actor=user, prompt_id=prompt_id, ip=ip)


@router.post(
    "/chat/prompts/{prompt_id}/render", response_model=PromptRendered, operation_id="chat_prompts_render"
)
def render_prompt(
    prompt_id: Id, body: PromptRender, user: CurrentUser, session: SessionDep
) -> PromptRendered:
    """The prompt with its variables filled in (a missing one → 422 naming `variables.<name>`)."""
    content = prompt_library.render_prompt(session, actor=user, prompt_id=prompt_id, variables=body.variables)
    return PromptRendered(content=content)
