"""REST routes: conversations, the system prompt library and the playground (issue 6).

Thin: parse, authorise, call `services.chat.conversations` / `chat_export` / `prompt_library` /
`playground`. Sending a message, regenerating and the playground answer Server-Sent Events
(`text/event-stream`): each event is `event: <name>\\ndata: <one JSON line>\\n\\n`, the JSON shapes are
the `*Event` / `MessagePublic` models in `api/schemas_chat.py`. Everything that can fail before the
first byte (access, parent, model name) fails as a normal JSON error response instead.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from loraforge.api.deps import ClientIP, CurrentUser, SessionDep
from loraforge.api.errors import ErrorBody, ErrorDetail, ErrorResponse
from loraforge.api.paging import Page, PageSize
from loraforge.api.schemas_chat import (
    ChatStreamEvents,
    ConversationCreate,
    ConversationDetail,
    ConversationExport,
    ConversationPage,
    ConversationPublic,
    ConversationUpdate,
    DeltaEvent,
    MessagePublic,
    MessageSend,
    PlaygroundDeltaEvent,
    PlaygroundDoneEvent,
    PlaygroundErrorEvent,
    PlaygroundRequest,
    PlaygroundResultEvent,
    PlaygroundRunPage,
    PlaygroundRunPublic,
    PlaygroundStreamEvents,
    PromptCreate,
    PromptPage,
    PromptPublic,
    PromptRender,
    PromptRendered,
    PromptUpdate,
    Regenerate,
)
from loraforge.api.sse import EventStreamResponse
from loraforge.db.models import Conversation, PromptTemplate, User
from loraforge.db.session import Database
from loraforge.errors import ServiceError
from loraforge.inference.types import Endpoint
from loraforge.services.chat import conversations, playground
from loraforge.services.chat import export as chat_export
from loraforge.services.chat import prompts as prompt_library
from loraforge.services.chat.conversations import BranchMessage, ConversationView, ReplyEvent
from loraforge.services.serving import gateway

router = APIRouter(tags=["chat"])

_STREAM_DOC = (
    "Server-Sent Events. `event: message` (the stored user message, MessagePublic), `event: delta` "
    "(`{content?, reasoning_content?}`), then `event: done` (the stored assistant message, MessagePublic) "
    "or `event: error` (`{error: {code, message, details}}`)."
)
_PLAYGROUND_DOC = (
    "Server-Sent Events, each tagged with `index` (the model's position): `delta` `{index, content?, "
    "reasoning_content?}`, `result` `{index, model, content, ..., latency_ms, ttft_ms, tokens_per_second}` "
    "when a model finishes, `error` `{index, model, error: {code, message, details}}` when one fails (the "
    "others go on), finally `done` `{run_id}`. Lines starting with `:` are keep-alive comments."
)


def _stream_responses(description: str, events: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    # FastAPI files `model` under the route's media type (text/event-stream), so the event shapes
    # reach the OpenAPI components and the generated client's types.
    return {200: {"description": description, "model": events}}


def _sse(event: str, payload: BaseModel | dict[str, Any]) -> bytes:
    data = (
        payload.model_dump_json(exclude_none=isinstance(payload, DeltaEvent))
        if isinstance(payload, BaseModel)
        else json.dumps(payload, separators=(",", ":"))
    )
    return f"event: {event}\ndata: {data}\n\n".encode()


def _error_body(exc: ServiceError) -> ErrorBody:
    # Same fields as the JSON error responses (api/errors.py), so the UI reads one shape.
    details = [ErrorDetail(field=f"body.{issue.field}", message=issue.message) for issue in exc.fields]
    return ErrorBody(code=exc.code, message=exc.message, details=details)


def _message(item: BranchMessage) -> MessagePublic:
    public = MessagePublic.model_validate(item.message)
    public.siblings = item.siblings
    return public


def _conversation(conversation: Conversation, count: int) -> ConversationPublic:
    public = ConversationPublic.model_validate(conversation)
    public.message_count = count
    return public


def _detail(view: ConversationView) -> ConversationDetail:
    base = _conversation(view.conversation, view.message_count)
    return ConversationDetail(**base.model_dump(), messages=[_message(m) for m in view.messages])


# ---- conversations ------------------------------------------------------------------------------------


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
def get_conversation(conversation_id: int, user: CurrentUser, session: SessionDep) -> ConversationDetail:
    """The conversation and its current branch (root to head), each message with its siblings' ids."""
    return _detail(conversations.view_conversation(session, actor=user, conversation_id=conversation_id))


@router.patch(
    "/chat/conversations/{conversation_id}", response_model=ConversationDetail,
    operation_id="chat_conversations_update",
)  # fmt: skip
def update_conversation(
    conversation_id: int, body: ConversationUpdate, user: CurrentUser, session: SessionDep
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
def delete_conversation(conversation_id: int, user: CurrentUser, session: SessionDep, ip: ClientIP) -> None:
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
    conversation_id: int,
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


# ---- sending, regenerating ------------------------------------------------------------------------------


async def _reply_stream(
    database: Database,
    plan: conversations.ReplyPlan,
    endpoint: Endpoint,
    prepared: conversations.Prepared,
) -> AsyncIterator[bytes]:
    if prepared.user_message is not None:
        yield _sse("message", _message(prepared.user_message))
    events = conversations.stream_reply(database=database, plan=plan, endpoint=endpoint, prepared=prepared)
    try:
        async for event in events:
            yield _reply_event(event)
    finally:
        await events.aclose()


def _reply_event(event: ReplyEvent) -> bytes:
    if event.kind == "delta" and event.delta is not None:
        delta = DeltaEvent(content=event.delta.content, reasoning_content=event.delta.reasoning_content)
        return _sse("delta", delta)
    if event.kind == "done" and event.message is not None:
        return _sse("done", _message(event.message))
    assert event.error is not None
    return _sse("error", ErrorResponse(error=_error_body(event.error)))


@router.post(
    "/chat/conversations/{conversation_id}/messages",
    response_class=EventStreamResponse,
    response_model=None,
    operation_id="chat_messages_send",
    responses=_stream_responses(_STREAM_DOC, ChatStreamEvents),
)
async def send_message(
    conversation_id: int, body: MessageSend, request: Request, user: CurrentUser, session: SessionDep
) -> EventStreamResponse:
    """Store the user's message and stream the answer. Unknown model, parent or conversation → a JSON
    error before anything is stored."""
    parent_id: int | Literal["head"] | None = (
        body.parent_id if "parent_id" in body.model_fields_set else conversations.HEAD
    )
    plan = await run_in_threadpool(
        lambda: conversations.plan_reply(
            session,
            actor=user,
            conversation_id=conversation_id,
            parent_id=parent_id,
            model=body.model,
            params=body.params.model_dump(exclude_none=True) if body.params else None,
        )
    )
    endpoint = await gateway.resolve(request.app.state, actor=user, model=plan.model)
    prepared = await run_in_threadpool(
        lambda: conversations.record_user_message(session, actor=user, plan=plan, content=body.content)
    )
    return EventStreamResponse(_reply_stream(request.app.state.db, plan, endpoint, prepared))


@router.post(
    "/chat/conversations/{conversation_id}/messages/{message_id}/regenerate",
    response_class=EventStreamResponse,
    response_model=None,
    operation_id="chat_messages_regenerate",
    responses=_stream_responses(
        "Server-Sent Events like sending, without the `message` event: `delta`…, then `done` or `error`.",
        ChatStreamEvents,
    ),
)
async def regenerate_message(
    conversation_id: int,
    message_id: int,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    body: Annotated[Regenerate | None, Body()] = None,
) -> EventStreamResponse:
    """A new answer beside assistant message `message_id` (same parent: a sibling branch), or to user
    message `message_id` (e.g. after its answer failed); optionally with another model or parameters."""
    body = body or Regenerate()
    plan = await run_in_threadpool(
        lambda: conversations.plan_regenerate(
            session,
            actor=user,
            conversation_id=conversation_id,
            message_id=message_id,
            model=body.model,
            params=body.params.model_dump(exclude_none=True) if body.params else None,
        )
    )
    endpoint = await gateway.resolve(request.app.state, actor=user, model=plan.model)
    prepared = await run_in_threadpool(
        lambda: conversations.prepare_regenerate(session, actor=user, plan=plan)
    )
    return EventStreamResponse(_reply_stream(request.app.state.db, plan, endpoint, prepared))


# ---- prompt library -------------------------------------------------------------------------------------


def _prompt(prompt: PromptTemplate, user: User) -> PromptPublic:
    public = PromptPublic.model_validate(prompt)
    public.editable = prompt_library.is_editable(user, prompt)
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
def get_prompt(prompt_id: int, user: CurrentUser, session: SessionDep) -> PromptPublic:
    return _prompt(prompt_library.get_prompt(session, actor=user, prompt_id=prompt_id), user)


@router.patch("/chat/prompts/{prompt_id}", response_model=PromptPublic, operation_id="chat_prompts_update")
def update_prompt(
    prompt_id: int, body: PromptUpdate, user: CurrentUser, session: SessionDep, ip: ClientIP
) -> PromptPublic:
    """Change name, content or sharing (the owner only; others who see a shared prompt: 403 `not_owner`)."""
    prompt = prompt_library.update_prompt(
        session, actor=user, prompt_id=prompt_id, changes=body.model_dump(exclude_unset=True), ip=ip
    )
    return _prompt(prompt, user)


@router.delete(
    "/chat/prompts/{prompt_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="chat_prompts_delete"
)
def delete_prompt(prompt_id: int, user: CurrentUser, session: SessionDep, ip: ClientIP) -> None:
    prompt_library.delete_prompt(session, actor=user, prompt_id=prompt_id, ip=ip)


@router.post(
    "/chat/prompts/{prompt_id}/render", response_model=PromptRendered, operation_id="chat_prompts_render"
)
def render_prompt(
    prompt_id: int, body: PromptRender, user: CurrentUser, session: SessionDep
) -> PromptRendered:
    """The prompt with its variables filled in (a missing one → 422 naming `variables.<name>`)."""
    content = prompt_library.render_prompt(session, actor=user, prompt_id=prompt_id, variables=body.variables)
    return PromptRendered(content=content)


# ---- playground -----------------------------------------------------------------------------------------


def _playground_event(event: playground.PlaygroundEvent) -> bytes:
    if event.kind == "ping":
        return b": keep-alive\n\n"
    if event.kind == "delta" and event.delta is not None:
        delta = PlaygroundDeltaEvent(
            index=event.index, content=event.delta.content, reasoning_content=event.delta.reasoning_content
        )
        return _sse("delta", delta.model_dump(exclude_none=True))
    if event.kind == "result" and event.result is not None:
        return _sse("result", PlaygroundResultEvent(index=event.index, **event.result))
    if event.kind == "error" and event.error is not None:
        model = event.result["model"] if event.result else ""
        return _sse(
            "error", PlaygroundErrorEvent(index=event.index, model=model, error=_error_body(event.error))
        )
    assert event.run_id is not None
    return _sse("done", PlaygroundDoneEvent(run_id=event.run_id))


async def _playground_stream(events: AsyncIterator[playground.PlaygroundEvent]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield _playground_event(event)
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


@router.post(
    "/chat/playground",
    response_class=EventStreamResponse,
    response_model=None,
    operation_id="chat_playground_run",
    responses=_stream_responses(_PLAYGROUND_DOC, PlaygroundStreamEvents),
)
async def run_playground(body: PlaygroundRequest, request: Request, user: CurrentUser) -> EventStreamResponse:
    """Send one prompt to 1–3 models at once and stream their answers side by side; the run is saved."""
    state = request.app.state

    async def resolve(model: str) -> Endpoint:
        return await gateway.resolve(state, actor=user, model=model)

    events = playground.run_playground(
        database=state.db, resolve=resolve, actor_id=user.id, prompt=body.prompt,
        system_prompt=body.system_prompt, models=list(body.models),
        params=body.params.model_dump(exclude_none=True) if body.params else {},
    )  # fmt: skip
    return EventStreamResponse(_playground_stream(events))


@router.get("/chat/playground", response_model=PlaygroundRunPage, operation_id="chat_playground_list")
def list_playground_runs(
    user: CurrentUser, session: SessionDep, page: Page = 1, page_size: PageSize = 20
) -> PlaygroundRunPage:
    """Your saved playground runs, newest first."""
    found = playground.list_runs(session, actor=user, offset=(page - 1) * page_size, limit=page_size)
    return PlaygroundRunPage(
        items=[PlaygroundRunPublic.model_validate(r) for r in found.items],
        total=found.total, page=page, page_size=page_size,
    )  # fmt: skip


@router.get(
    "/chat/playground/{run_id}", response_model=PlaygroundRunPublic, operation_id="chat_playground_get"
)
def get_playground_run(run_id: int, user: CurrentUser, session: SessionDep) -> PlaygroundRunPublic:
    return PlaygroundRunPublic.model_validate(playground.get_run(session, actor=user, run_id=run_id))


@router.delete(
    "/chat/playground/{run_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="chat_playground_delete"
)
def delete_playground_run(run_id: int, user: CurrentUser, session: SessionDep) -> None:
    playground.delete_run(session, actor=user, run_id=run_id)
