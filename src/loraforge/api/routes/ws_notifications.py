"""`WS /ws/notifications?after=<id>`: the caller's notifications, live (mounted at the root).

Authentication: `api/ws_auth.py` (subprotocol pair `loraforge.bearer, <token>` or an
`Authorization: Bearer` header). Close codes: 4401 no/invalid credential, 4400 a bad `after`, 4429 the
user already holds `ws_max_per_user` open WebSockets (`api/ws_limits.py`).

Server -> client JSON text frames:
  {"type": "snapshot", "unread": N, "last_id": id}  first;
  then {"type": "notification", id, kind, title, body, job_id, data, created_at, read_at} for each
  notification with id > after (oldest first; without `after`: the unread ones), then each new one
  as it is created;  {"type": "heartbeat", "ts": ISO 8601 time, "unread": N} after
  `ws_heartbeat_seconds` without another message. Client messages are read and ignored.

New notifications are found by polling the database about every second (another server process may
have created them) and at once when the hub announces one on `user:<id>` (services.platform.notifications).
A reconnecting client passes the last id it saw as `after` and misses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from loraforge.api.schemas.notifications import NotificationPublic
from loraforge.api.ws_auth import CLOSE_BAD_REQUEST, CredentialCheck, accept_authenticated
from loraforge.api.ws_limits import claim_slot
from loraforge.db.session import Database
from loraforge.services.platform import notifications
from loraforge.services.platform.event_hub import EventHub, user_channel, wire_time
from loraforge.settings import Settings

router = APIRouter()

POLL_SECONDS = 1.0
REPLAY_LIMIT = 500  # notifications sent per read; more follow on the next read


def _frame(item: Any) -> dict[str, Any]:
    public = NotificationPublic.model_validate(notifications.notification_json(item))
    return {"type": "notification", **public.model_dump(mode="json")}


def _initial(database: Database, user_id: int, after: int | None) -> tuple[list[dict[str, Any]], int, int]:
    """(frames to replay, cursor = highest id covered, unread count) in one short session."""
    with database.session() as session:
        top = notifications.last_id(session, user_id=user_id)
        if after is None:
            rows = notifications.after(
                session, user_id=user_id, after_id=0, unread_only=True, limit=REPLAY_LIMIT
            )
            rows = [r for r in rows if r.id <= top]
            cursor = top
        else:
            # Anything past the limit is sent by the first poll (ids > cursor).
            rows = notifications.after(
                session, user_id=user_id, after_id=after, unread_only=False, limit=REPLAY_LIMIT
            )
            cursor = rows[-1].id if rows else after
        unread = notifications.unread_count(session, user_id=user_id)
        return [_frame(r) for r in rows], cursor, unread


def _newer(database: Database, user_id: int, cursor: int) -> list[dict[str, Any]]:
    with database.session() as session:
        rows = notifications.after(
            session, user_id=user_id, after_id=cursor, unread_only=False, limit=REPLAY_LIMIT
        )
        return [_frame(r) for r in rows]


def _unread(database: Database, user_id: int) -> int:
    with database.session() as session:
        return notifications.unread_count(session, user_id=user_id)


def _parse_after(raw: str | None) -> tuple[bool, int | None]:
    """(valid, value): absent → (True, None); a non-negative integer → (True, n); else (False, None)."""
    if raw is None or raw == "":
        return True, None
    try:
        value = int(raw)
    except ValueError:
        return False, None
    return (value >= 0), (value if value >= 0 else None)


async def _drain_client(websocket: WebSocket, gone: asyncio.Event) -> None:
    """Read (and ignore) client messages; notice the disconnect."""
    try:
        while True:
            message = await websocket.receive()
            if message.get("type") == "websocket.disconnect":
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        gone.set()


@router.websocket("/ws/notifications")
async def notifications_stream(websocket: WebSocket) -> None:
    principal = await accept_authenticated(websocket)
    if principal is None:
        return
    slot = await claim_slot(websocket, principal.user.id)
    if slot is None:
        return
    with slot:
        await _serve(websocket, principal.user.id)


async def _serve(websocket: WebSocket, user_id: int) -> None:
    valid, after = _parse_after(websocket.query_params.get("after"))
    if not valid:
        await websocket.close(code=CLOSE_BAD_REQUEST, reason="after must be a non-negative integer")
        return
    database: Database = websocket.app.state.db
    settings: Settings = websocket.app.state.settings
    hub: EventHub = websocket.app.state.hub
    gone = asyncio.Event()
    reader = asyncio.create_task(_drain_client(websocket, gone))
    try:
        # Subscribe before the first read: a notification committed in between still wakes us.
        with hub.subscribe(user_channel(user_id)) as sub:
            frames, cursor, unread = await run_in_threadpool(_initial, database, user_id, after)
            await websocket.send_json({"type": "snapshot", "unread": unread, "last_id": cursor})
            for frame in frames:
                await websocket.send_json(frame)
            cursor = max([cursor, *(f["id"] for f in frames)])
            last_sent = time.monotonic()
            next_poll = time.monotonic() + POLL_SECONDS
            credential = CredentialCheck(websocket, user_id)
            while not gone.is_set():
                if not await credential.still_valid():
                    return
                timeout = max(0.0, min(next_poll - time.monotonic(), 0.25))
                woke = await sub.get(timeout=timeout)
                if gone.is_set():
                    break
                if woke is not None or time.monotonic() >= next_poll or sub.overflowed:
                    sub.overflowed = False
                    next_poll = time.monotonic() + POLL_SECONDS
                    for frame in await run_in_threadpool(_newer, database, user_id, cursor):
                        await websocket.send_json(frame)
                        cursor = max(cursor, int(frame["id"]))
                        last_sent = time.monotonic()
                if time.monotonic() - last_sent >= settings.ws_heartbeat_seconds:
                    unread = await run_in_threadpool(_unread, database, user_id)
                    await websocket.send_json({"type": "heartbeat", "ts": wire_time(), "unread": unread})
                    last_sent = time.monotonic()
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away mid-send
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        with contextlib.suppress(Exception):
            await websocket.close()
