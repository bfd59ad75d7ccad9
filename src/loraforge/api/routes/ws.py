"""WebSocket endpoints, mounted at the root, not /api: `WS /ws/jobs/{job_id}?after=SEQ`.

Authentication: `api/ws_auth.py` (subprotocol pair `loraforge.bearer, <token>` or an
`Authorization: Bearer` header). Close codes: 4401 no/invalid credential, 4404 no such job (or not
visible: owner or staff only), 4400 a bad `after`, 4429 the user already holds `ws_max_per_user` open
WebSockets (`api/ws_limits.py`).

Server -> client JSON text frames, in this order:
  {"type": "snapshot", "job": JobPublic, "last_seq": N, "resources": <latest resource event> | null}
  every stored event with seq > after, oldest first (flat, as GET /api/jobs/{id}/events items:
  {"seq", "type", "ts", ...fields}); then live events the same way;
  {"type": "job", "job": JobPublic} whenever the row changes (status, progress, error, ...), also
  when a request changed it;  {"type": "heartbeat", "ts": ISO 8601 time} after `ws_heartbeat_seconds`
  without another message. Client -> server messages (e.g. {"type": "ping"}) are read and ignored.

No gaps, no duplicates: subscribe to the hub first, then replay from the database, then forward live
events whose seq is exactly the next one; anything else (a gap, an overflowed subscription, a row
whose last_event_seq is ahead while the hub is silent - another server may be pumping) is repaired
by reading the database again. The scheduler publishes only after its commit, so the database
always has at least what the hub announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from loraforge.api.ids import parse_id
from loraforge.api.schemas.jobs import JobPublic
from loraforge.api.ws_auth import (
    CLOSE_BAD_REQUEST,
    CLOSE_NOT_FOUND,
    CredentialCheck,
    accept_authenticated,
)
from loraforge.api.ws_limits import claim_slot
from loraforge.db.models import Job, User
from loraforge.db.session import Database
from loraforge.errors import NotFound
from loraforge.services.jobs import stream as job_stream
from loraforge.services.jobs.reads import JobContext
from loraforge.services.platform.event_hub import EventHub, Subscription, job_channel, wire_time
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.ws")
router = APIRouter()

ROW_POLL_SECONDS = 0.5  # status/progress changed by a request (or another server)
HUB_SILENT_SECONDS = 1.0  # the row is ahead of what was sent and the hub said nothing this long
_WAIT_SLICE = 0.25  # how often the loop looks at the clock and the client when nothing arrives


def _public(job: Job, context: JobContext) -> dict[str, Any]:
    return JobPublic.of(job, context).model_dump(mode="json")


def _changes(job: dict[str, Any]) -> dict[str, Any]:
    # last_event_seq moves with every event and the events themselves say so; not worth a message.
    return {k: v for k, v in job.items() if k not in {"last_event_seq", "updated_at"}}


def _parse_after(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


class _JobStream:
    """One connection's state: what was sent, and the reads that keep it complete."""

    def __init__(
        self, websocket: WebSocket, database: Database, user: User, job_id: int, heartbeat_s: float
    ) -> None:
        self.ws = websocket
        self.database = database
        self.user = user
        self.job_id = job_id
        self.heartbeat_s = heartbeat_s
        self.last_seq = 0  # the highest event seq sent
        self.row_seq = 0  # the row's last_event_seq at the last read
        self.job_state: dict[str, Any] = {}
        self.last_sent_at = time.monotonic()
        self.last_hub_at = time.monotonic()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_json(message)
        self.last_sent_at = time.monotonic()

    async def start(self, after: int) -> None:
        snap = await run_in_threadpool(
            job_stream.snapshot, self.database, actor=self.user, job_id=self.job_id
        )
        job = _public(snap.job, snap.context)
        self.job_state = _changes(job)
        self.row_seq = snap.job.last_event_seq
        await self.send(
            {"type": "snapshot", "job": job, "last_seq": snap.job.last_event_seq, "resources": snap.resources}
        )
        self.last_seq = after
        await self.catch_up()

    async def catch_up(self) -> None:
        """Send every stored event after the last one sent, page by page."""
        while True:
            page = await run_in_threadpool(
                job_stream.events_after,
                self.database,
                actor=self.user,
                job_id=self.job_id,
                after=self.last_seq,
            )
            for event in page:
                await self.send(event)
                self.last_seq = int(event["seq"])
            if len(page) < job_stream.EVENT_PAGE:
                return

    async def on_hub(self, message: dict[str, Any]) -> bool:
        """Forward a live message; True when the row should be re-read now (a status change)."""
        self.last_hub_at = time.monotonic()
        if message.get("type") == "job":
            return True
        seq = message.get("seq")
        if not isinstance(seq, int) or seq <= self.last_seq:
            return False  # already sent by a replay
        if seq == self.last_seq + 1:
            await self.send(message)
            self.last_seq = seq
        else:
            await self.catch_up()  # a gap: the database has it (published after commit)
        return False

    async def poll_row(self) -> None:
        job_row, context = await run_in_threadpool(
            job_stream.read_job, self.database, actor=self.user, job_id=self.job_id
        )
        self.row_seq = job_row.last_event_seq
        job = _public(job_row, context)
        changed = _changes(job) != self.job_state
        hub_silent = time.monotonic() - self.last_hub_at >= HUB_SILENT_SECONDS
        if self.row_seq > self.last_seq and (changed or hub_silent):
            # Events first: a client that sees "succeeded" has already seen the final status event.
            await self.catch_up()
        if changed:
            self.job_state = _changes(job)
            await self.send({"type": "job", "job": job})

    async def run(self, sub: Subscription, client_gone: asyncio.Task[None]) -> None:
        next_poll = time.monotonic() + ROW_POLL_SECONDS
        credential = CredentialCheck(self.ws, self.user.id)
        while not client_gone.done():
            if not await credential.still_valid():
                return
            now = time.monotonic()
            timeout = max(0.0, min(next_poll - now, _WAIT_SLICE))
            message = await sub.get(timeout=timeout)
            if sub.overflowed:  # it dropped messages: drain what is queued and resync from the database
                sub.overflowed = False
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                await self.catch_up()
                message = None
            poll_now = message is not None and await self.on_hub(message)
            if poll_now or time.monotonic() >= next_poll:
                await self.poll_row()
                next_poll = time.monotonic() + ROW_POLL_SECONDS
            if time.monotonic() - self.last_sent_at >= self.heartbeat_s:
                await self.send({"type": "heartbeat", "ts": wire_time()})


async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a disconnect ends the stream promptly."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


@router.websocket("/ws/jobs/{job_id}")
async def job_events_ws(websocket: WebSocket, job_id: str) -> None:
    """Live events and status of one job (see the module docstring for the protocol)."""
    principal = await accept_authenticated(websocket)
    if principal is None:
        return
    slot = await claim_slot(websocket, principal.user.id)
    if slot is None:
        return
    with slot:
        await _serve(websocket, principal.user, job_id)


async def _serve(websocket: WebSocket, user: User, job_id: str) -> None:
    after = _parse_after(websocket.query_params.get("after"))
    if after is None:
        await websocket.close(code=CLOSE_BAD_REQUEST, reason="after must be a non-negative integer")
        return
    if parse_id(job_id) is None:  # ASCII digits within BIGINT (`³` passes str.isdigit)
        await websocket.close(code=CLOSE_NOT_FOUND, reason="job not found")
        return
    hub: EventHub = websocket.app.state.hub
    database: Database = websocket.app.state.db
    settings: Settings = websocket.app.state.settings
    stream = _JobStream(websocket, database, user, int(job_id), settings.ws_heartbeat_seconds)
    client_gone = asyncio.create_task(_drain_client(websocket))
    try:
        # Subscribe before the first read: whatever is committed after it arrives through the hub.
        with hub.subscribe(job_channel(int(job_id))) as sub:
            await stream.start(after)
            await stream.run(sub, client_gone)
    except NotFound:  # never visible, or deleted / access lost while streaming
        with contextlib.suppress(Exception):
            await websocket.close(code=CLOSE_NOT_FOUND, reason="job not found")
    except WebSocketDisconnect:
        pass
    except Exception as exc:  # the client vanished mid-send, or the server is stopping
        logger.debug("job stream %s ended: %r", job_id, exc)
        with contextlib.suppress(Exception):
            await websocket.close(code=1011)
    finally:
        client_gone.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await client_gone
