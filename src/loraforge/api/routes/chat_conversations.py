"""REST routes: conversations (list, create, import, read, update, delete, export).

Thin: parse, authorise, call `services.chat.conversations` / `services.chat.export`. Sending and
regenerating are `chat_messages`; the prompt library `chat_prompts`; the playground `chat_playground`
(included in that order after this router, see `api/routes/__init__.py`).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import Response

from loraforge.api.deps import ClientIP, CurrentUser, SessionDep
from loraforge.api.ids import Id
from loraforge.api.paging import Page, PageSize
from loraforge.api.schemas.chat import (
    ConversationCreate,
    ConversationDetail,
    ConversationExport,
    ConversationPage,
    ConversationPublic,
    ConversationUpdate,
    MessagePublic,
)
from loraforge.db.models import Conversation
from loraforge.services.chat import conversations
from loraforge.services.chat import export as chat_export
from loraforge.services.chat.conversations import BranchMessage, ConversationView

router = APIRouter(tags=["chat"])


def message_public(item: BranchMessage) -> MessagePublic:
    public = MessagePublic.model_validate(item.message)
    public.siblings = item.siblings
    return public


def _conversation(conversation: Conversation, count: int) -> ConversationPublic:
    public = ConversationPublic.model_validate(conversation)
    public.message_count = count
    return public


def _detail(view: ConversationView) -> ConversationDetail:
    base = _conversation(view.conversation, view.message_count)
    return ConversationDetail(**base.model_dump(), messages=[message_public(m) for m in view.messages])


@router.get("/chat/conversations", response_model=ConversationPage, operation_id="chat_conversations_list")
def list_conversations(
    user: CurrentUser,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200, description="Matches titles and message text.")] = None,
    page: Page = 1,
    page_size: PageSize = 50,
) -> ConversationPage:
    """Your conversations, most recently updated first."""
    found = conversations.list_conversations(
        session, actor=user, q=q, offset=(page - 1) * page_size, limit=page_size
    )
    return ConversationPage(
        items=[_conversation(c, found.counts.get(c.id, 0)) for c in found.items],
        total=found.total, page=page, page_size=page_size,
    )  # fmt: skip


@router.post(
    "/chat/conversations", response_model=ConversationDetail, status_code=status.HTTP_201_CREATED,
    operation_id="chat_conversations_create",
)  # fmt: skip
def create_conversation(
    body: ConversationCreate, user: CurrentUser, session: SessionDep
) -> ConversationDetail:
    conversation = conversations.create_conversation(
        session, actor=user, title=body.title, model=body.model, system_prompt=body.system_prompt,
        params=body.params.model_dump(exclude_none=True) if body.params else {},
    )  # fmt: skip
    return _detail(ConversationView(conversation=conversation, messages=[], message_count=0))


@router.post(
    "/chat/conversations/import", response_model=ConversationDetail, status_code=status.HTTP_201_CREATED,
    operation_id="chat_conversations_import",
)  # fmt: skip
def import_conversation(
    body: ConversationExport, user: CurrentUser, session: SessionDep
) -> ConversationDetail:
    """A new conversation from a JSON export (every branch kept; new ids)."""
    data = body.model_dump(exclude_none=False)
    data["params"] = body.params.model_dump(exclude_none=True)
    for message, source in zip(data["messages"], body.messages, strict=True):
        message["params"] = source.params.model_dump(exclude_none=True)
    conversation = chat_export.import_conversation(session, actor=user, data=data)
    return _detail(conversations.view_conversation(session, actor=user, conversation_id=conversation.id))


@router.get(
    "/chat/conversations/{conversation_id}", response_model=ConversationDetail,
    operation_id="chat_conversations_get",
)  # fmt: skip
def get_conversation(conversation_id: Id, user: CurrentUser, session: SessionDep) -> ConversationDetail:
    """The conversation and its current branch (root to head), each message with its siblings' ids."""
    return _detail(conversations.view_conversation(session, actor=user, conversation_id=conversation_id))


@router.patch(
    "/chat/conversations/{conversation_id}", response_model=ConversationDetail,
    operation_id="chat_conversations_update",
)  # fmt: skip
def update_conversation(
    conversation_id: Id, body: ConversationUpdate, user: CurrentUser, session: SessionDep
) -> ConversationDetail:
    """Change title, model, system prompt, parameters, or switch branch (`head_message_id`)."""
    changes = body.model_dump(exclude_unset=True)
    if "params" in changes and body.params is not None:
        changes["params"] = body.params.model_dump(exclude_none=True)
    view = conversations.update_conversation(
        session, actor=user, conversation_id=conversation_id, changes=changes
    )
    return _detail(view)


@router.delete(
    "/chat/conversations/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT,
    operation_id="chat_conversations_delete",
)  # fmt: skip
def delete_conversation(conversation_id: Id, user: CurrentUser, session: SessionDep, ip: ClientIP) -> None:
    conversations.delete_conversation(session, actor=user, conversation_id=conversation_id, ip=ip)


@router.get(
    "/chat/conversations/{conversation_id}/export",
    response_class=Response,
    operation_id="chat_conversations_export",
    responses={
        200: {
            "description": "A download: every branch as JSON (importable), or the shown branch as Markdown.",
            "content": {
                # The component the import route's body already registers (its own $defs would dangle).
                "application/json": {"schema": {"$ref": "#/components/schemas/ConversationExport"}},
                "text/markdown": {"schema": {"type": "string"}},
            },
        }
    },
)
def export_conversation(
    conversation_id: Id,
    user: CurrentUser,
    session: SessionDep,
    format: Annotated[
        Literal["json", "markdown"], Query(description="json (re-importable) or markdown.")
    ] = "json",
) -> Response:
    if format == "markdown":
        text = chat_export.export_markdown(session, actor=user, conversation_id=conversation_id)
        content, media_type, suffix = text.encode("utf-8"), "text/markdown; charset=utf-8", "md"
    else:
        data = chat_export.export_data(session, actor=user, conversation_id=conversation_id)
        content = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
        media_type, suffix = "application/json", "json"
    # The file name comes from the id, never from the title (header safety).
    return Response(
        content=content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="conversation-{int(conversation_id)}.{suffix}"'
        },
    )
