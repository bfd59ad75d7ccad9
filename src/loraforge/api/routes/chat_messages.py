"""REST routes: sending a message and regenerating an answer, both answered as Server-Sent Events.

Thin: `services.chat.replies` plans the answer (access, parent, model), the gateway resolves the model,
then the user's message is stored and the answer streamed (`chat_sse`). Everything that can fail before
the first byte (access, parent, model name) fails as a normal JSON error response instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request
from starlette.concurrency import run_in_threadpool

from loraforge.api.deps import CurrentUser, SessionDep
from loraforge.api.ids import Id
from loraforge.api.routes.chat_conversations import message_public
from loraforge.api.routes.chat_sse import error_body, sse, stream_responses
from loraforge.api.schemas.chat import ChatParams, ChatStreamEvents, DeltaEvent, MessageSend, Regenerate
from loraforge.api.schemas.common import ErrorResponse
from loraforge.api.sse import EventStreamResponse
from loraforge.db.models import User
from loraforge.db.session import Database
from loraforge.inference.types import Endpoint
from loraforge.services.chat import replies
from loraforge.services.chat.replies import Prepared, ReplyEvent, ReplyPlan
from loraforge.services.serving import gateway

router = APIRouter(tags=["chat"])

_STREAM_DOC = (
    "Server-Sent Events. `event: message` (the stored user message, MessagePublic), `event: delta` "
    "(`{content?, reasoning_content?}`), then `event: done` (the stored assistant message, MessagePublic) "
    "or `event: error` (`{error: {code, message, details}}`)."
)


async def _reply_stream(
    database: Database, plan: ReplyPlan, endpoint: Endpoint, prepared: Prepared
) -> AsyncIterator[bytes]:
    if prepared.user_message is not None:
        yield sse("message", message_public(prepared.user_message))
    events = replies.stream_reply(database=database, plan=plan, endpoint=endpoint, prepared=prepared)
    try:
        async for event in events:
            yield _reply_event(event)
    finally:
        await events.aclose()


def _reply_event(event: ReplyEvent) -> bytes:
    if event.kind == "delta" and event.delta is not None:
        delta = DeltaEvent(content=event.delta.content, reasoning_content=event.delta.reasoning_content)
        return sse("delta", delta)
    if event.kind == "done" and event.message is not None:
        return sse("done", message_public(event.message))
    assert event.error is not None
    return sse("error", ErrorResponse(error=error_body(event.error)))


def _params(params: ChatParams | None) -> dict[str, Any] | None:
    return params.model_dump(exclude_none=True) if params else None


async def _answer(
    request: Request,
    user: User,
    plan: Callable[[], ReplyPlan],
    prepare: Callable[[ReplyPlan], Prepared],
) -> EventStreamResponse:
    """Plan (a thread: database), resolve the model (may start a worker), prepare, then stream."""
    planned = await run_in_threadpool(plan)
    endpoint = await gateway.resolve(request.app.state, actor=user, model=planned.model)
    prepared = await run_in_threadpool(prepare, planned)
    return EventStreamResponse(_reply_stream(request.app.state.db, planned, endpoint, prepared))


@router.post(
    "/chat/conversations/{conversation_id}/messages",
    response_class=EventStreamResponse,
    response_model=None,
    operation_id="chat_messages_send",
    responses=stream_responses(_STREAM_DOC, ChatStreamEvents),
)
async def send_message(
    conversation_id: Id, body: MessageSend, request: Request, user: CurrentUser, session: SessionDep
) -> EventStreamResponse:
    """Store the user's message and stream the answer. Unknown model, parent or conversation → a JSON
    error before anything is stored."""
    parent_id: int | Literal["head"] | None = (
        body.parent_id if "parent_id" in body.model_fields_set else replies.HEAD
    )
    return await _answer(
        request,
        user,
        lambda: replies.plan_reply(
            session, actor=user, conversation_id=conversation_id, parent_id=parent_id, model=body.model,
            params=_params(body.params),
        ),
        lambda plan: replies.record_user_message(session, actor=user, plan=plan, content=body.content),
    )  # fmt: skip


@router.post(
    "/chat/conversations/{conversation_id}/messages/{message_id}/regenerate",
    response_class=EventStreamResponse,
    response_model=None,
    operation_id="chat_messages_regenerate",
    responses=stream_responses(
        "Server-Sent Events like sending, without the `message` event: `delta`…, then `done` or `error`.",
        ChatStreamEvents,
    ),
)
async def regenerate_message(
    conversation_id: Id,
    message_id: Id,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    body: Annotated[Regenerate | None, Body()] = None,
) -> EventStreamResponse:
    """A new answer beside assistant message `message_id` (same parent: a sibling branch), or to user
    message `message_id` (e.g. after its answer failed); optionally with another model or parameters."""
    regenerate = body or Regenerate()
    return await _answer(
        request,
        user,
        lambda: replies.plan_regenerate(
            session, actor=user, conversation_id=conversation_id, message_id=message_id,
            model=regenerate.model, params=_params(regenerate.params),
        ),
        lambda plan: replies.prepare_regenerate(session, actor=user, plan=plan),
    )  # fmt: skip
