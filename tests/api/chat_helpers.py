"""Helpers for the chat API tests: reading Server-Sent Events from a TestClient stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from api_helpers import Account
from fastapi.testclient import TestClient


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any]


def iter_events(response: httpx.Response) -> Iterator[Event]:
    """Parse `event:` / `data:` blocks as they arrive (comments, i.e. keep-alives, are skipped)."""
    name: str | None = None
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if line == "":
            if name is not None or data:
                yield Event(name or "message", json.loads("\n".join(data)))
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    if name is not None or data:
        yield Event(name or "message", json.loads("\n".join(data)))


def stream_events(
    client: TestClient, account: Account, path: str, body: dict[str, Any] | None
) -> list[Event]:
    """POST and read the whole event stream (asserting it is one)."""
    with client.stream("POST", path, json=body, headers=account.headers) as response:
        assert response.status_code == 200, response.read().decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(iter_events(response))


def send(
    client: TestClient, account: Account, conversation_id: int, content: str, **extra: Any
) -> list[Event]:
    return stream_events(
        client, account, f"/api/chat/conversations/{conversation_id}/messages", {"content": content, **extra}
    )


def deltas_text(events: list[Event], index: int | None = None) -> str:
    return "".join(
        e.data.get("content") or ""
        for e in events
        if e.name == "delta" and (index is None or e.data.get("index") == index)
    )
