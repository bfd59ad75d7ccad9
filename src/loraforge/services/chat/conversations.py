"""Conversations: a tree of messages per chat and the branch on show (list, create, read, update, delete).

Messages form a tree through `parent_id`: sending after an earlier message (edit and resend) or
regenerating an answer adds a sibling, i.e. a branch. `head_message_id` is the leaf on show; the
branch is the path from the root to it. Conversations are private to their owner (staff included:
chats are personal), strangers get 404. Sending and regenerating (which add messages) are `replies`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.models import ChatMessage, Conversation, User
from loraforge.errors import FieldIssue, InvalidInput, NotFound
from loraforge.services.platform import audit
from loraforge.services.platform.audit import AuditAction
from loraforge.services.platform.changes import refuse_nulls
from loraforge.services.platform.owned_items import get_private

DEFAULT_TITLE = "New chat"


def not_found() -> NotFound:
    return NotFound("conversation not found", code="conversation_not_found")


def get_conversation(session: Session, *, actor: User, conversation_id: int) -> Conversation:
    return get_private(session, Conversation, conversation_id, actor=actor, not_found=not_found)


# ---- list / create / read / update / delete -------------------------------------------------------------


@dataclass(frozen=True)
class ConversationPage:
    items: list[Conversation]
    counts: dict[int, int]
    total: int


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_conversations(
    session: Session, *, actor: User, q: str | None, offset: int, limit: int
) -> ConversationPage:
    """The actor's conversations, most recently updated first; `q` matches titles and message text."""
    query = select(Conversation).where(Conversation.owner_id == actor.id)
    if q:
        pattern = _like(q)
        in_messages = exists().where(
            ChatMessage.conversation_id == Conversation.id,
            ChatMessage.content.ilike(pattern, escape="\\"),
        )
        query = query.where(or_(Conversation.title.ilike(pattern, escape="\\"), in_messages))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(
        session.scalars(
            query.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).offset(offset).limit(limit)
        )
    )
    counts: dict[int, int] = {}
    if rows:
        counted = session.execute(
            select(ChatMessage.conversation_id, func.count())
            .where(ChatMessage.conversation_id.in_([c.id for c in rows]))
            .group_by(ChatMessage.conversation_id)
        )
        counts = {conversation_id: count for conversation_id, count in counted}
    return ConversationPage(items=rows, counts=counts, total=total)


def message_count(session: Session, *, conversation_id: int) -> int:
    query = select(func.count()).where(ChatMessage.conversation_id == conversation_id)
    return session.scalar(query) or 0


def create_conversation(
    session: Session,
    *,
    actor: User,
    title: str | None,
    model: str | None,
    system_prompt: str,
    params: dict[str, Any],
) -> Conversation:
    conversation = Conversation(
        owner_id=actor.id,
        title=title or DEFAULT_TITLE,
        model=model,
        system_prompt=system_prompt,
        params=params,
    )
    session.add(conversation)
    session.commit()
    return conversation


@dataclass(frozen=True)
class BranchMessage:
    message: ChatMessage
    siblings: list[int]


@dataclass(frozen=True)
class ConversationView:
    conversation: Conversation
    messages: list[BranchMessage]
    message_count: int


@dataclass
class MessageTree:
    parent: dict[int, int | None] = field(default_factory=dict)
    children: dict[int | None, list[int]] = field(default_factory=dict)

    def path_to(self, message_id: int | None) -> list[int]:
        """Ids from the root to `message_id` (empty for None or an id not in the tree)."""
        path: list[int] = []
        current = message_id
        while current is not None and current in self.parent and len(path) <= len(self.parent):
            path.append(current)
            current = self.parent[current]
        path.reverse()
        return path

    def newest_leaf(self, message_id: int) -> int:
        """Follow the newest child down to a leaf: switching to a branch shows its latest continuation."""
        current = message_id
        while self.children.get(current):
            current = max(self.children[current])
        return current


def message_tree(session: Session, conversation_id: int) -> MessageTree:
    """Every message of the conversation as parent and children links (ids only)."""
    tree = MessageTree()
    rows = session.execute(
        select(ChatMessage.id, ChatMessage.parent_id)
        .where(ChatMessage.conversation_id == conversation_id)
        .order_by(ChatMessage.id)
    )
    for message_id, parent_id in rows:
        tree.parent[message_id] = parent_id
        tree.children.setdefault(parent_id, []).append(message_id)
    return tree


def _branch(session: Session, conversation: Conversation, tree: MessageTree) -> list[BranchMessage]:
    path = tree.path_to(conversation.head_message_id)
    if not path:
        return []
    rows = {m.id: m for m in session.scalars(select(ChatMessage).where(ChatMessage.id.in_(path)))}
    return [
        BranchMessage(message=rows[i], siblings=list(tree.children.get(tree.parent[i], [])))
        for i in path
        if i in rows
    ]


def view_conversation(session: Session, *, actor: User, conversation_id: int) -> ConversationView:
    conversation = get_conversation(session, actor=actor, conversation_id=conversation_id)
    tree = message_tree(session, conversation.id)
    return ConversationView(
        conversation=conversation,
        messages=_branch(session, conversation, tree),
        message_count=len(tree.parent),
    )


def siblings_of(session: Session, message: ChatMessage) -> list[int]:
    query = select(ChatMessage.id).where(ChatMessage.conversation_id == message.conversation_id)
    if message.parent_id is None:
        query = query.where(ChatMessage.parent_id.is_(None))
    else:
        query = query.where(ChatMessage.parent_id == message.parent_id)
    return list(session.scalars(query.order_by(ChatMessage.id)))


def update_conversation(
    session: Session, *, actor: User, conversation_id: int, changes: dict[str, Any]
) -> ConversationView:
    """Apply title, model (null clears it), system_prompt, params, head_message_id (switch branch)."""
    refuse_nulls(changes, ("title", "system_prompt", "head_message_id"))
    conversation = get_conversation(session, actor=actor, conversation_id=conversation_id)
    tree = message_tree(session, conversation.id)
    if "head_message_id" in changes:
        target = changes["head_message_id"]
        if target not in tree.parent:
            raise InvalidInput(
                "head_message_id is not a message of this conversation",
                code="message_not_found",
                fields=[FieldIssue(field="head_message_id", message="not a message of this conversation")],
            )
        conversation.head_message_id = tree.newest_leaf(target)
    for key in ("title", "model", "system_prompt"):
        if key in changes:
            setattr(conversation, key, changes[key])
    if "params" in changes:
        conversation.params = changes["params"] or {}
    conversation.updated_at = utcnow()
    session.commit()
    return ConversationView(
        conversation=conversation,
        messages=_branch(session, conversation, tree),
        message_count=len(tree.parent),
    )


def delete_conversation(session: Session, *, actor: User, conversation_id: int, ip: str | None) -> None:
    conversation = get_conversation(session, actor=actor, conversation_id=conversation_id)
    count = message_count(session, conversation_id=conversation.id)
    audit.record(
        session, action=AuditAction.conversation_deleted, actor=actor, target_type="conversation",
        target_id=conversation.id, ip=ip, details={"messages": count},
    )  # fmt: skip
    # Messages go with it (ON DELETE CASCADE on both backends; SQLite has foreign keys on).
    session.delete(conversation)
    session.commit()
