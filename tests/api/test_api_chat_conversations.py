"""Conversations end to end: the real gateway and builtin worker on the demo model, SSE read back.

Streaming tests share one app (one worker process) per test; the worker is stopped by the app's
lifespan when the TestClient closes. Tree-shaped scenarios that need no model (branch switching,
search, export/import, access) build their conversations through import, which is fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from chat_helpers import Event, deltas_text, iter_events, send, stream_events
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from loraforge.db.models import ChatMessage
from loraforge.settings import Settings

# Sampled with a seed: greedy decoding of the random demo model can emit only empty pieces.
PARAMS = {"max_tokens": 8, "seed": 7}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # No training here: the scheduler would only add work to a 2-core machine.
    return settings.model_copy(update={"scheduler_enabled": False})


def _conversation(client: TestClient, account: Account, **body: Any) -> dict[str, Any]:
    response = client.post("/api/chat/conversations", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _get(client: TestClient, account: Account, conversation_id: int) -> dict[str, Any]:
    response = client.get(f"/api/chat/conversations/{conversation_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _done(events: list[Event]) -> dict[str, Any]:
    names = [e.name for e in events]
    assert names[-1] == "done", events
    assert all(name == "delta" for name in names[1:-1] if name != "message"), names
    done: dict[str, Any] = events[-1].data
    return done


def _message_rows(app: FastAPI) -> int:
    with app.state.db.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(ChatMessage)) or 0)


# ---- with the model -------------------------------------------------------------------------------------


def test_send_stream_branch_regenerate_and_reload(
    app: FastAPI, client: TestClient, api: Api, demo_model: Path
) -> None:
    alice = api.account("alice")
    conversation = _conversation(client, alice, model="demo-tiny", system_prompt="Be brief.", params=PARAMS)
    cid = conversation["id"]
    assert conversation["title"] == "New chat" and conversation["messages"] == []

    # Send: the stored user message, deltas, then the stored answer with its numbers.
    events = send(client, alice, cid, "Hello there, tiny model! " * 4)
    assert events[0].name == "message"
    user1 = events[0].data
    assert user1["role"] == "user" and user1["parent_id"] is None and user1["siblings"] == [user1["id"]]
    assert any(e.name == "delta" for e in events), events
    answer1 = _done(events)
    assert answer1["role"] == "assistant" and answer1["parent_id"] == user1["id"]
    assert answer1["content"] == deltas_text(events) and answer1["content"]
    assert answer1["model"] == "demo-tiny" and answer1["params"] == PARAMS
    assert answer1["finish_reason"] in ("stop", "length")
    assert answer1["prompt_tokens"] > 0 and 0 < answer1["completion_tokens"] <= 8
    assert answer1["latency_ms"] > 0 and 0 < answer1["ttft_ms"] <= answer1["latency_ms"]

    # A new client (a reload) reads the same; the first message named the conversation. (Without
    # `with`: a second lifespan would stop the app's inference worker when it ends.)
    reloaded = _get(TestClient(app), alice, cid)
    assert reloaded["title"] == ("Hello there, tiny model! " * 4)[:59].rstrip() + "…"
    assert [m["id"] for m in reloaded["messages"]] == [user1["id"], answer1["id"]]
    assert reloaded["messages"][1]["completion_tokens"] == answer1["completion_tokens"]
    assert reloaded["messages"][1]["latency_ms"] == answer1["latency_ms"]
    assert reloaded["head_message_id"] == answer1["id"]

    # Second turn, then "edit and resend" it: same parent (the first answer) → a new branch.
    events = send(client, alice, cid, "second question")
    user2, answer2 = events[0].data, _done(events)
    assert user2["parent_id"] == answer1["id"]
    events = send(client, alice, cid, "second question, edited", parent_id=answer1["id"])
    user2b, answer2b = events[0].data, _done(events)
    assert user2b["parent_id"] == answer1["id"] and user2b["siblings"] == [user2["id"], user2b["id"]]
    shown = _get(client, alice, cid)
    assert [m["id"] for m in shown["messages"]] == [user1["id"], answer1["id"], user2b["id"], answer2b["id"]]
    assert shown["messages"][2]["siblings"] == [user2["id"], user2b["id"]]
    assert shown["message_count"] == 6

    # Switch back to the first branch: the head goes to the newest leaf under the chosen message.
    switched = client.patch(
        f"/api/chat/conversations/{cid}", json={"head_message_id": user2["id"]}, headers=alice.headers
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["head_message_id"] == answer2["id"]
    assert [m["id"] for m in switched.json()["messages"]][-2:] == [user2["id"], answer2["id"]]

    # Regenerate the shown answer: a sibling with the same parent, which becomes the head.
    events = stream_events(
        client,
        alice,
        f"/api/chat/conversations/{cid}/messages/{answer2['id']}/regenerate",
        {"params": PARAMS},
    )
    assert events[0].name != "message"
    again = _done(events)
    assert again["parent_id"] == user2["id"] and again["siblings"] == [answer2["id"], again["id"]]
    assert _get(client, alice, cid)["head_message_id"] == again["id"]
    # Regenerating on a user message answers it (e.g. after a failure); body optional.
    events = stream_events(
        client, alice, f"/api/chat/conversations/{cid}/messages/{user2b['id']}/regenerate", None
    )
    assert _done(events)["parent_id"] == user2b["id"]

    # Search finds a conversation by the text of a message, not only its title.
    other_chat = _conversation(client, alice, title="unrelated")
    found = client.get("/api/chat/conversations", params={"q": "edited"}, headers=alice.headers).json()
    assert [c["id"] for c in found["items"]] == [cid]
    listed = client.get("/api/chat/conversations", headers=alice.headers).json()
    assert [c["id"] for c in listed["items"]] == [other_chat["id"], cid]  # newest updated first
    assert listed["items"][1]["message_count"] == 8


def test_unknown_model_and_bad_parent_store_nothing(app: FastAPI, client: TestClient, api: Api) -> None:
    alice = api.account("alice")
    cid = _conversation(client, alice, model="no-such-model")["id"]
    assert_error(
        client.post(f"/api/chat/conversations/{cid}/messages", json={"content": "hi"}, headers=alice.headers),
        404,
        "model_not_found",
    )
    without = _conversation(client, alice)["id"]
    assert_error(
        client.post(
            f"/api/chat/conversations/{without}/messages", json={"content": "hi"}, headers=alice.headers
        ),
        422,
        "model_required",
        field="body.model",
    )
    # A parent from another conversation is refused too.
    foreign = _import(client, alice, _tree_export())["messages"][0]["id"]
    assert _message_rows(app) == 4
    response = client.post(
        f"/api/chat/conversations/{without}/messages",
        json={"content": "hi", "parent_id": foreign, "model": "demo-tiny"},
        headers=alice.headers,
    )
    assert_error(response, 404, "message_not_found", field="body.parent_id")
    assert_error(
        client.post(
            f"/api/chat/conversations/{cid}/messages",
            json={"content": "hi", "params": {"temperature": 9}},
            headers=alice.headers,
        ),
        422,
        field="body.params.temperature",
    )
    assert_error(
        client.post(
            f"/api/chat/conversations/{cid}/messages/{foreign}/regenerate", json={}, headers=alice.headers
        ),
        404,
        "message_not_found",
    )
    assert _message_rows(app) == 4
    assert _get(client, alice, without)["title"] == "New chat"
    assert _get(client, alice, cid)["title"] == "New chat"


def test_client_going_away_stores_the_partial_answer_as_cancelled(
    app: FastAPI, client: TestClient, api: Api, demo_model: Path
) -> None:
    alice = api.account("alice")
    cid = _conversation(client, alice, model="demo-tiny")["id"]
    path = f"/api/chat/conversations/{cid}/messages"
    body = {"content": "tell me a long story", "params": {"max_tokens": 4000, "temperature": 1.0, "seed": 1}}
    with client.stream("POST", path, json=body, headers=alice.headers) as response:
        assert response.status_code == 200
        seen: list[Event] = []
        for event in iter_events(response):
            seen.append(event)
            if event.name == "delta":
                break  # leave after the first piece: the TestClient cancels the request
    assert [e.name for e in seen] == ["message", "delta"]
    # Closing the stream waits for the app's request task, so the row is there now.
    messages = _get(client, alice, cid)["messages"]
    assert len(messages) == 2, messages
    partial = messages[1]
    assert partial["finish_reason"] == "cancelled"
    assert partial["content"] or partial["reasoning_content"]
    assert partial["completion_tokens"] is None or partial["completion_tokens"] < 4000


# ---- without the model: CRUD, branches, export / import, access -----------------------------------------


def _tree_export() -> dict[str, Any]:
    """A conversation with two branches under the first answer (ids are file-local)."""
    return {
        "format": "loraforge.conversation",
        "version": 1,
        "title": "Imported chat",
        "model": "demo-tiny",
        "system_prompt": "You are terse.",
        "params": {"temperature": 0.5},
        "head_message_id": 13,
        "messages": [
            {"id": 10, "parent_id": None, "role": "user", "content": "What is LoRA?"},
            {"id": 11, "parent_id": 10, "role": "assistant", "content": "Low-rank adapters.",
             "reasoning_content": "Think: adapters.", "model": "demo-tiny", "params": {"max_tokens": 9},
             "prompt_tokens": 5, "completion_tokens": 4, "latency_ms": 12.5, "ttft_ms": 3.0,
             "finish_reason": "stop", "created_at": "2026-01-02T03:04:05"},
            {"id": 12, "parent_id": 11, "role": "user", "content": "And QLoRA?"},
            {"id": 13, "parent_id": 11, "role": "user", "content": "And DoRA, the zebra one?"},
        ],
    }  # fmt: skip


def _import(client: TestClient, account: Account, data: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/chat/conversations/import", json=data, headers=account.headers)
    assert response.status_code == 201, response.text
    imported: dict[str, Any] = response.json()
    return imported


def test_crud_branch_switch_search_export_import(client: TestClient, api: Api) -> None:
    alice = api.account("alice")
    imported = _import(client, alice, _tree_export())
    cid = imported["id"]
    contents = [m["content"] for m in imported["messages"]]
    assert contents == ["What is LoRA?", "Low-rank adapters.", "And DoRA, the zebra one?"]
    first_user, answer, dora = imported["messages"]
    assert answer["reasoning_content"] == "Think: adapters." and answer["latency_ms"] == 12.5
    assert answer["created_at"].startswith("2026-01-02T03:04:05")
    assert len(dora["siblings"]) == 2 and dora["siblings"][1] == dora["id"]
    qlora_id = dora["siblings"][0]

    switched = client.patch(
        f"/api/chat/conversations/{cid}", json={"head_message_id": qlora_id}, headers=alice.headers
    ).json()
    assert switched["head_message_id"] == qlora_id
    assert switched["messages"][-1]["content"] == "And QLoRA?"
    # From the root: the newest leaf under it.
    to_root = client.patch(
        f"/api/chat/conversations/{cid}", json={"head_message_id": first_user["id"]}, headers=alice.headers
    ).json()
    assert to_root["head_message_id"] == dora["id"]

    updated = client.patch(
        f"/api/chat/conversations/{cid}",
        json={"title": "Adapters", "model": None, "system_prompt": "", "params": {"top_p": 0.9}},
        headers=alice.headers,
    ).json()
    assert (updated["title"], updated["model"], updated["system_prompt"]) == ("Adapters", None, "")
    assert updated["params"] == {"top_p": 0.9}
    for bad, field in [
        ({"head_message_id": 999_999}, "body.head_message_id"),
        ({"title": None}, "body.title"),
        ({"params": {"nope": 1}}, "body.params.nope"),
    ]:
        assert_error(
            client.patch(f"/api/chat/conversations/{cid}", json=bad, headers=alice.headers), 422, field=field
        )

    # Search: the title or any message's text (case-insensitive; LIKE wildcards are literal).
    for q, hits in [("zebra", [cid]), ("ADAPTERS", [cid]), ("qlora", [cid]), ("%", []), ("nothing", [])]:
        found = client.get("/api/chat/conversations", params={"q": q}, headers=alice.headers).json()
        assert [c["id"] for c in found["items"]] == hits, q

    # Export JSON keeps every branch and round-trips through import.
    exported = client.get(f"/api/chat/conversations/{cid}/export", headers=alice.headers)
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == f'attachment; filename="conversation-{cid}.json"'
    data = exported.json()
    assert len(data["messages"]) == 4 and data["title"] == "Adapters"
    again = _import(client, alice, data)
    assert again["id"] != cid
    assert [m["content"] for m in again["messages"]] == [m["content"] for m in to_root["messages"]]
    assert again["messages"][1]["completion_tokens"] == 4
    reexported = client.get(f"/api/chat/conversations/{again['id']}/export", headers=alice.headers).json()
    strip = {"id", "parent_id", "created_at"}
    assert [{k: v for k, v in m.items() if k not in strip} for m in reexported["messages"]] == [
        {k: v for k, v in m.items() if k not in strip} for m in data["messages"]
    ]

    # Markdown: the branch on show, a download named by id.
    markdown = client.get(
        f"/api/chat/conversations/{cid}/export", params={"format": "markdown"}, headers=alice.headers
    )
    assert markdown.status_code == 200 and markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.headers["content-disposition"] == f'attachment; filename="conversation-{cid}.md"'
    text = markdown.text
    assert text.startswith("# Adapters\n")
    for expected in ("## User", "What is LoRA?", "## Assistant (demo-tiny)", "Low-rank adapters.", "DoRA"):
        assert expected in text
    assert "QLoRA" not in text  # another branch

    # Delete: gone, audited.
    assert client.delete(f"/api/chat/conversations/{cid}", headers=alice.headers).status_code == 204
    assert_error(
        client.get(f"/api/chat/conversations/{cid}", headers=alice.headers), 404, "conversation_not_found"
    )
    audit = api.audit(api.admin(), action="conversation.deleted")
    assert [(a["target_id"], a["details"]) for a in audit] == [(str(cid), {"messages": 4})]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"messages": [{"id": 1, "parent_id": 2, "role": "user", "content": "x"}]},
         "body.messages.0.parent_id"),
        ({"messages": [{"id": 1, "role": "user", "content": "x"}, {"id": 1, "role": "user", "content": "y"}]},
         "body.messages.1.id"),
        ({"messages": [{"id": 1, "role": "robot", "content": "x"}]}, "body.messages.0.role"),
        ({"messages": [{"id": 1, "role": "user"}]}, "body.messages.0.content"),
        ({"head_message_id": 77}, "body.head_message_id"),
        ({"format": "other"}, "body.format"),
        ({"messages": [{"id": 1, "role": "user", "content": "x", "params": {"loraforge": {}}}]},
         "body.messages.0.params.loraforge"),
        # in UTC this date is before year 1 (it overflowed into a 500 once)
        ({"messages": [{"id": 1, "role": "user", "content": "x", "created_at": "0001-01-01T00:00:00+01:01"}]},
         "body.messages.0.created_at"),
    ],
)  # fmt: skip
def test_import_is_validated_and_all_or_nothing(
    app: FastAPI, client: TestClient, api: Api, patch: dict[str, Any], field: str
) -> None:
    alice = api.account("alice")
    data = {**_tree_export(), "head_message_id": None, **patch}
    assert_error(
        client.post("/api/chat/conversations/import", json=data, headers=alice.headers), 422, field=field
    )
    assert client.get("/api/chat/conversations", headers=alice.headers).json()["total"] == 0
    assert _message_rows(app) == 0


def test_other_users_get_404_everywhere(client: TestClient, api: Api) -> None:
    alice = api.account("alice")
    bob = api.account("bob")
    admin = api.admin()
    cid = _import(client, alice, _tree_export())["id"]
    message_id = _get(client, alice, cid)["messages"][1]["id"]
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/api/chat/conversations/{cid}", None),
        ("PATCH", f"/api/chat/conversations/{cid}", {"title": "mine"}),
        ("DELETE", f"/api/chat/conversations/{cid}", None),
        ("GET", f"/api/chat/conversations/{cid}/export", None),
        ("POST", f"/api/chat/conversations/{cid}/messages", {"content": "hi", "model": "demo-tiny"}),
        ("POST", f"/api/chat/conversations/{cid}/messages/{message_id}/regenerate", None),
    ]
    for account in (bob, admin):  # chats are personal: staff do not read them either
        for method, path, body in requests:
            response = client.request(method, path, json=body, headers=account.headers)
            assert_error(response, 404, "conversation_not_found")
        listed = client.get("/api/chat/conversations", params={"q": "LoRA"}, headers=account.headers).json()
        assert listed["total"] == 0
    assert _get(client, alice, cid)["title"] == "Imported chat"
    assert json.loads(client.get(f"/api/chat/conversations/{cid}/export", headers=alice.headers).text)[
        "title"
    ]
