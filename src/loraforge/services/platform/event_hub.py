"""In-process fan-out of live messages to WebSocket subscribers.

Channels are strings: `job:<id>` (a job's engine events, status changes and resource samples) and
`user:<id>` (that user's notifications). Publishers are plain threads (the scheduler's worker
thread, request threads); subscribers are asyncio tasks on the server's event loop. A publisher
never blocks: each subscriber has a bounded queue, and one that falls behind is marked `overflowed`
and resynchronises from the database (events are stored before they are published, so nothing is
lost; the hub is only the fast path).

The hub holds no history. A WebSocket handler subscribes first, then replays from the database,
then forwards live messages it has not sent yet (by seq), which leaves neither gaps nor duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

_QUEUE_SIZE = 4096


def wire_time(ts: float | None = None) -> str:
    """A Unix time (default: now) as every live message writes a time: ISO 8601 in UTC, the way the
    REST responses serialise theirs (`…Z`), so a streamed event equals its GET twin."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return moment.isoformat().replace("+00:00", "Z")


class Subscription:
    def __init__(self, hub: EventHub, channel: str, loop: asyncio.AbstractEventLoop) -> None:
        self.hub = hub
        self.channel = channel
        self.loop = loop
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        self.overflowed = False

    def _put(self, message: dict[str, Any]) -> None:  # runs on the subscriber's loop
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed = True

    async def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message, or None after `timeout` seconds without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout=timeout)
        except TimeoutError:
            return None


class EventHub:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()

    def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Deliver `message` to every subscriber of `channel`; callable from any thread, never blocks."""
        with self._lock:
            subs = list(self._subs.get(channel, ()))
        for sub in subs:
            with contextlib.suppress(RuntimeError):  # the subscriber's loop is closed
                sub.loop.call_soon_threadsafe(sub._put, message)

    def has_subscribers(self, channel: str) -> bool:
        with self._lock:
            return bool(self._subs.get(channel))

    @contextlib.contextmanager
    def subscribe(self, channel: str) -> Iterator[Subscription]:
        """Subscribe for the duration of a `with` block; call from a coroutine on the server's loop."""
        sub = Subscription(self, channel, asyncio.get_running_loop())
        with self._lock:
            self._subs.setdefault(channel, set()).add(sub)
        try:
            yield sub
        finally:
            with self._lock:
                subs = self._subs.get(channel)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subs[channel]


def job_channel(job_id: int) -> str:
    return f"job:{int(job_id)}"


def user_channel(user_id: int) -> str:
    return f"user:{int(user_id)}"
