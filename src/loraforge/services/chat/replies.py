"""Sending and regenerating in a conversation: the user's message stored, the answer streamed and stored.

Sending is three steps so that nothing is stored for a request that cannot be answered:
`plan_reply` (access, parent, model, parameters), then the caller resolves the model through the
gateway, then `record_user_message` stores the user's message and `stream_reply` streams and stores
the answer. The answer row is written once, complete: at the end, or with what had arrived when the
client went away (finish_reason `cancelled`) or upstream failed (`error`); never an empty row.
Regenerating is the same with `plan_regenerate` and `prepare_regenerate` (no new user message).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ChatMessage, Conversation, User
from loraforge.db.session import Database
from loraforge.errors import FieldIssue, InvalidInput, NotFound, ServiceError, Unavailable
from loraforge.inference.types import Endpoint
from loraforge.services.chat.conversations import (
    DEFAULT_TITLE,
    BranchMessage,
    get_conversation,
    message_tree,
    not_found,
    siblings_of,
)
from loraforge.services.chat.streaming import (
    CANCELLED,
    ERRORED,
    Delta,
    Generation,
    close_stream,
    request_body,
)

logger = logging.getLogger("loraforge.chat")

TITLE_CHARS = 60
HEAD: Literal["head"] = "head"  # `parent_id` not given: answer after the current head


@dataclass(frozen=True)
class ReplyPlan:
    """What an answer needs, decided before anything is stored."""

    conversation_id: int
    parent_id: int | None  # the message the answer (or the new user message) hangs under
    model: str
    params: dict[str, Any]


def _model_for(conversation: Conversation, model: str | None) -> str:
    chosen = model or conversation.model
    if not chosen:
        raise InvalidInput(
            "choose a model for this conversation",
            code="model_required",
            fields=[FieldIssue(field="model", message="no model given and the conversation has none")],
        )
    return chosen


def _message_in(session: Session, conversation_id: int, message_id: int, field_name: str) -> ChatMessage:
    message = session.get(ChatMessage, message_id)
    if message is None or message.conversation_id != conversation_id:
        raise NotFound(
            "message not found in this conversation",
            code="message_not_found",
            fields=[FieldIssue(field=field_name, message="not a message of this conversation")],
        )
    return message


def plan_reply(
    session: Session,
    *,
    actor: User,
    conversation_id: int,
    parent_id: int | Literal["head"] | None,
    model: str | None,
    params: dict[str, Any] | None,
) -> ReplyPlan:
    """Check a new user message: the conversation is the actor's, the parent is in it, a model is known."""
    conversation = get_conversation(session, actor=actor, conversation_id=conversation_id)
    if parent_id == HEAD:
        parent: int | None = conversation.head_message_id
    elif parent_id is None:
        parent = None
    else:
        parent = _message_in(session, conversation.id, parent_id, "parent_id").id
    # End the read transaction: the caller may now wait seconds for a worker to start, and should not
    # hold a pooled connection meanwhile.
    session.commit()
    return ReplyPlan(
        conversation_id=conversation.id,
        parent_id=parent,
        model=_model_for(conversation, model),
        params={**conversation.params, **(params or {})},
    )


def plan_regenerate(
    session: Session,
    *,
    actor: User,
    conversation_id: int,
    message_id: int,
    model: str | None,
    params: dict[str, Any] | None,
) -> ReplyPlan:
    """A new answer beside assistant message `message_id` (same parent), or to user message `message_id`
    (useful when its answer failed)."""
    conversation = get_conversation(session, actor=actor, conversation_id=conversation_id)
    message = _message_in(session, conversation.id, message_id, "message_id")
    if message.role == "assistant":
        if message.parent_id is None:
            raise InvalidInput(
                "this answer has no question to answer again",
                code="cannot_regenerate",
                fields=[FieldIssue(field="message_id", message="an assistant message without a parent")],
            )
        parent = message.parent_id
        default_model = message.model
    elif message.role == "user":
        parent = message.id
        default_model = None
    else:
        raise InvalidInput(
            "only user and assistant messages can be answered again",
            code="cannot_regenerate",
            fields=[FieldIssue(field="message_id", message=f"a {message.role} message")],
        )
    session.commit()  # end the read transaction before the caller waits for the model (see plan_reply)
    return ReplyPlan(
        conversation_id=conversation.id,
        parent_id=parent,
        model=model or conversation.model or default_model or _model_for(conversation, None),
        params={**conversation.params, **(params or {})},
    )


def _history(session: Session, conversation: Conversation, up_to: int | None) -> list[dict[str, str]]:
    """The system prompt and the branch ending at `up_to`, as OpenAI messages."""
    messages: list[dict[str, str]] = []
    if conversation.system_prompt.strip():
        messages.append({"role": "system", "content": conversation.system_prompt})
    path = message_tree(session, conversation.id).path_to(up_to)
    if path:
        rows = {m.id: m for m in session.scalars(select(ChatMessage).where(ChatMessage.id.in_(path)))}
        messages.extend({"role": rows[i].role, "content": rows[i].content} for i in path if i in rows)
    return messages


def _title_from(content: str) -> str:
    flat = " ".join(content.split())
    if len(flat) <= TITLE_CHARS:
        return flat or DEFAULT_TITLE
    return flat[: TITLE_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class Prepared:
    """A stored user message (None when regenerating) and the messages to send upstream."""

    user_message: BranchMessage | None
    messages: list[dict[str, str]]
    answer_parent_id: int  # the user message the answer replies to


def record_user_message(session: Session, *, actor: User, plan: ReplyPlan, content: str) -> Prepared:
    """Store the user's message under the plan's parent and make it the head (after the model resolved)."""
    conversation = get_conversation(session, actor=actor, conversation_id=plan.conversation_id)
    if plan.parent_id is not None:
        _message_in(session, conversation.id, plan.parent_id, "parent_id")
    message = ChatMessage(
        conversation_id=conversation.id, parent_id=plan.parent_id, role="user", content=content
    )
    session.add(message)
    session.flush()
    conversation.head_message_id = message.id
    if conversation.title == DEFAULT_TITLE and plan.parent_id is None:
        conversation.title = _title_from(content)
    conversation.updated_at = utcnow()
    session.commit()
    return Prepared(
        user_message=BranchMessage(message=message, siblings=siblings_of(session, message)),
        messages=_history(session, conversation, message.id),
        answer_parent_id=message.id,
    )


def prepare_regenerate(session: Session, *, actor: User, plan: ReplyPlan) -> Prepared:
    conversation = get_conversation(session, actor=actor, conversation_id=plan.conversation_id)
    if plan.parent_id is None:  # plan_regenerate always names the user message answered
        raise not_found()
    return Prepared(
        user_message=None,
        messages=_history(session, conversation, plan.parent_id),
        answer_parent_id=plan.parent_id,
    )


@dataclass(frozen=True)
class ReplyEvent:
    """What `stream_reply` yields: a delta, the stored answer (`done`), or an error."""

    kind: Literal["delta", "done", "error"]
    delta: Delta | None = None
    message: BranchMessage | None = None
    error: ServiceError | None = None


def _store_answer(
    database: Database, plan: ReplyPlan, parent_id: int, generation: Generation
) -> BranchMessage | None:
    """Write the answer in one go and make it the head; None if the conversation is gone meanwhile."""
    result = generation.result
    with database.session_factory() as session:
        conversation = session.get(Conversation, plan.conversation_id)
        if conversation is None:
            return None
        message = ChatMessage(
            conversation_id=conversation.id,
            parent_id=parent_id,
            role="assistant",
            content=result.content,
            reasoning_content=result.reasoning_content or None,
            model=plan.model,
            params=plan.params,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            latency_ms=result.latency_ms,
            ttft_ms=result.ttft_ms,
            finish_reason=result.finish_reason,
        )
        session.add(message)
        try:
            session.flush()
            conversation.head_message_id = message.id
            conversation.updated_at = utcnow()
            session.commit()
        except IntegrityError:  # the parent went away with a concurrent delete
            session.rollback()
            return None
        return BranchMessage(message=message, siblings=siblings_of(session, message))


async def stream_reply(
    *, database: Database, plan: ReplyPlan, endpoint: Endpoint, prepared: Prepared
) -> AsyncGenerator[ReplyEvent]:
    """Stream the answer to `messages`, then store it. Closed early (client gone): upstream is closed and
    what arrived is stored as `cancelled`. Upstream failure: the partial answer (if any) is stored as
    `error` and an error event follows."""
    body = request_body(model=plan.model, messages=prepared.messages, params=plan.params)
    generation = Generation(endpoint, body)
    parent_id = prepared.answer_parent_id
    failure: ServiceError | None = None
    deltas = generation.deltas()
    try:
        async for delta in deltas:
            yield ReplyEvent(kind="delta", delta=delta)
    except ServiceError as exc:
        failure = exc
    except Exception:
        logger.exception(
            "chat generation failed (conversation %s, model %s)", plan.conversation_id, plan.model
        )
        failure = Unavailable("the model failed to answer", code="generation_failed")
    except BaseException:
        # Cancelled or closed: no more events can go out. Close upstream now (not whenever the
        # generator is collected), then keep what the user already saw, written synchronously: an
        # await here could be cancelled again before the row is stored.
        await close_stream(deltas)
        if generation.result.has_output:
            generation.result.finish_reason = CANCELLED
            _store_answer(database, plan, parent_id, generation)
        raise
    if failure is not None:
        if generation.result.has_output:
            generation.result.finish_reason = ERRORED
            await anyio.to_thread.run_sync(_store_answer, database, plan, parent_id, generation)
        yield ReplyEvent(kind="error", error=failure)
        return
    if generation.result.finish_reason is None:
        generation.result.finish_reason = "stop"
    stored = await anyio.to_thread.run_sync(_store_answer, database, plan, parent_id, generation)
    if stored is None:
        yield ReplyEvent(kind="error", error=not_found())
        return
    yield ReplyEvent(kind="done", message=stored)
