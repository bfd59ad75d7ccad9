"""`WS /ws/operations`: the operators' live view (mounted at the root). Operators and admins only.

Authentication: `api/ws_auth.py` (subprotocol pair `loraforge.bearer, <token>` or an
`Authorization: Bearer` header). Close codes: 4401 no/invalid credential (also later, once it is
revoked), 4403 a signed-in user who is not an operator or admin (also later, once demoted), 4429 the
user already holds `ws_max_per_user` open WebSockets.

Server -> client JSON text frames:
  {"type": "summary", "summary": OperationsSummary} then {"type": "nodes", "nodes": [NodePublic]}
  on connect, and again after each `{"type": "nodes"}` on the hub channel `ops` (the operations loop
  publishes one per round; drain actions may too) or, without one, every `telemetry_interval_seconds`;
  {"type": "heartbeat", "ts": ISO 8601 time} after `ws_heartbeat_seconds` without another frame.
  Client messages are read and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from loraforge.api.schemas.operations import NodeList, OperationsSummary
from loraforge.api.ws_auth import CLOSE_FORBIDDEN, CredentialCheck, accept_authenticated
from loraforge.api.ws_limits import claim_slot
from loraforge.db.models import User
from loraforge.db.session import Database
from loraforge.services.operations import nodes, summary, views
from loraforge.services.operations.loop import OPS_CHANNEL
from loraforge.services.platform.event_hub import EventHub, wire_time
from loraforge.settings import Settings

router = APIRouter()

# Hub messages closer together than this are answered with one refresh (a burst of drain actions).
MIN_REFRESH_SECONDS = 0.5


def _frames(database: Database, settings: Settings, user_id: int) -> list[dict[str, Any]] | None:
    """The summary and nodes frames, or None when the user is no longer staff (or gone)."""
    with database.session() as session:
        user = session.get(User, user_id)
        if user is None or not nodes.is_staff(user):
            return None
        built = OperationsSummary.model_validate(summary.build(session, settings))
        items = views.list_public(session, user)
        listed = NodeList.model_validate({"items": items, "total": len(items)})
    return [
        {"type": "summary", "summary": built.model_dump(mode="json")},
        {"type": "nodes", "nodes": listed.model_dump(mode="json")["items"]},
    ]


async def _drain_client(websocket: WebSocket, gone: asyncio.Event) -> None:
    try:
        while True:
            message = await websocket.receive()
            if message.get("type") == "websocket.disconnect":
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        gone.set()


@router.websocket("/ws/operations")
async def operations_stream(websocket: WebSocket) -> None:
    principal = await accept_authenticated(websocket)
    if principal is None:
        return
    if not nodes.is_staff(principal.user):
        await websocket.close(code=CLOSE_FORBIDDEN, reason="operators and admins only")
        return
    slot = await claim_slot(websocket, principal.user.id)
    if slot is None:
        return
    with slot:
        await _serve(websocket, principal.user.id)


async def _serve(websocket: WebSocket, user_id: int) -> None:
    database: Database = websocket.app.state.db
    settings: Settings = websocket.app.state.settings
    hub: EventHub = websocket.app.state.hub
    interval = settings.telemetry_interval_seconds
    gone = asyncio.Event()
    reader = asyncio.create_task(_drain_client(websocket, gone))
    try:
        # Subscribed before the first read: a round that commits in between still triggers a refresh.
        with hub.subscribe(OPS_CHANNEL) as sub:
            credential = CredentialCheck(websocket, user_id)
            refresh_due = True
            last_refresh = 0.0
            last_sent = time.monotonic()
            while not gone.is_set():
                if not await credential.still_valid():
                    return
                now = time.monotonic()
                if refresh_due or now - last_refresh >= interval:
                    if now - last_refresh < MIN_REFRESH_SECONDS:
                        await asyncio.sleep(MIN_REFRESH_SECONDS - (now - last_refresh))
                    frames = await run_in_threadpool(_frames, database, settings, user_id)
                    if frames is None:
                        await websocket.close(code=CLOSE_FORBIDDEN, reason="operators and admins only")
                        return
                    for frame in frames:
                        await websocket.send_json(frame)
                    last_refresh = last_sent = time.monotonic()
                    refresh_due = False
                wait = max(0.0, min(0.5, interval - (time.monotonic() - last_refresh)))
                message = await sub.get(timeout=wait)
                if message is not None or sub.overflowed:
                    sub.overflowed = False
                    refresh_due = True
                if time.monotonic() - last_sent >= settings.ws_heartbeat_seconds:
                    await websocket.send_json({"type": "heartbeat", "ts": wire_time()})
                    last_sent = time.monotonic()
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away mid-send
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        with contextlib.suppress(Exception):
            await websocket.close()
