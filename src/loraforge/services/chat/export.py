"""Conversation export (JSON: the whole message tree; Markdown: the branch on show) and JSON import.

The JSON format (`format: "loraforge.conversation"`, `version: 1`) keeps every branch: each message
has an `id` and a `parent_id` that refer to ids inside the file, so import rebuilds the same tree
under new ids. Import checks the references (unique ids, parents that appear earlier, a head that
exists) and names the offending message index; nothing is stored unless all of it is valid.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ChatMessage, Conversation, User
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.chat import conversations

FORMAT = "loraforge.conversation"
VERSION = 1


def export_data(session: Session, *, actor: User, conversation_id: int) -> dict[str, Any]:
    conversation = conversations.get_conversation(session, actor=actor, conversation_id=conversation_id)
    rows = session.scalars(
        select(ChatMessage).where(ChatMessage.conversation_id == conversation.id).order_by(ChatMessage.id)
    )
    return {
        "format": FORMAT,
        "version": VERSION,
        "title": conversation.title,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "params": conversation.params,
        "head_message_id": conversation.head_message_id,
        "created_at": conversation.created_at.isoformat(),
        "exported_at": utcnow().isoformat(),
        "messages": [
            {
                "id": m.id,
                "parent_id": m.parent_id,
                "role": m.role,
                "content": m.content,
                "reasoning_content": m.reasoning_content,
                "model": m.model,
                "params": m.params,
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
                "latency_ms": m.latency_ms,
                "ttft_ms": m.ttft_ms,
                "finish_reason": m.finish_reason,
                "created_at": m.created_at.isoformat(),
            }
            for m in rows
        ],
    }


_ROLE_HEADINGS = {"user": "User", "assistant": "Assistant", "system": "System"}


def export_markdown(session: Session, *, actor: User, conversation_id: int) -> str:
    """The branch on show as Markdown: title, system prompt, then each turn under a heading."""
    view = conversations.view_conversation(session, actor=actor, conversation_id=conversation_id)
    conversation = view.conversation
    lines = [f"# {conversation.title}", ""]
    if conversation.model:
        lines += [f"Model: `{conversation.model}`", ""]
    if conversation.system_prompt.strip():
        lines += ["## System", "", conversation.system_prompt, ""]
    for item in view.messages:
        message = item.message
        heading = _ROLE_HEADINGS.get(message.role, message.role)
        if message.role == "assistant" and message.model:
            heading += f" ({message.model})"
        lines += [f"## {heading}", ""]
        if message.reasoning_content:
            lines += [
                "<details><summary>Reasoning</summary>",
                "",
                message.reasoning_content,
                "",
                "</details>",
                "",
            ]
        lines += [message.content, ""]
    return "\n".join(lines).rstrip() + "\n"


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"invalid conversation file: {field}: {message}", code="invalid_import",
                        fields=[FieldIssue(field=field, message=message)])  # fmt: skip


def _check_tree(messages: list[dict[str, Any]], head: int | None) -> None:
    seen: set[int] = set()
    for index, message in enumerate(messages):
        if message["id"] in seen:
            raise _invalid(f"messages.{index}.id", f"id {message['id']} appears twice")
        parent = message.get("parent_id")
        if parent is not None and parent not in seen:
            raise _invalid(f"messages.{index}.parent_id", f"no earlier message has id {parent}")
        seen.add(message["id"])
    if head is not None and head not in seen:
        raise _invalid("head_message_id", f"no message has id {head}")


def _aware(value: datetime | None, *, field: str) -> datetime:
    """A file's timestamp as UTC (naive ones are read as UTC); now when absent."""
    if value is None:
        return utcnow()
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise _invalid(field, "date out of range") from None


def import_conversation(session: Session, *, actor: User, data: dict[str, Any]) -> Conversation:
    """A new conversation of the actor's from an export (`data` already shape-checked by the API)."""
    messages: list[dict[str, Any]] = list(data.get("messages") or [])
    head = data.get("head_message_id")
    _check_tree(messages, head)
    stamps = [_aware(m.get("created_at"), field=f"messages.{i}.created_at") for i, m in enumerate(messages)]
    conversation = Conversation(
        owner_id=actor.id,
        title=data.get("title") or conversations.DEFAULT_TITLE,
        model=data.get("model"),
        system_prompt=data.get("system_prompt") or "",
        params=dict(data.get("params") or {}),
    )
    session.add(conversation)
    session.flush()
    new_ids: dict[int, int] = {}
    for message, created_at in zip(messages, stamps, strict=True):
        row = ChatMessage(
            conversation_id=conversation.id,
            parent_id=new_ids[message["parent_id"]] if message.get("parent_id") is not None else None,
            role=message["role"],
            content=message["content"],
            reasoning_content=message.get("reasoning_content"),
            model=message.get("model"),
            params=dict(message.get("params") or {}),
            prompt_tokens=message.get("prompt_tokens"),
            completion_tokens=message.get("completion_tokens"),
            latency_ms=message.get("latency_ms"),
            ttft_ms=message.get("ttft_ms"),
            finish_reason=message.get("finish_reason"),
            created_at=created_at,
        )
        session.add(row)
        session.flush()
        new_ids[message["id"]] = row.id
    if head is not None:
        conversation.head_message_id = new_ids[head]
    elif messages:
        # No head in the file: show the newest message's branch.
        conversation.head_message_id = new_ids[messages[-1]["id"]]
    session.commit()
    return conversation
