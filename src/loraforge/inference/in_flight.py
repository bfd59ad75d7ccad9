"""What a builtin-worker request holds while it runs, and the bridge from a generation thread to
the event loop.

- `FifoSlots`: at most `--concurrency` generations at once, the rest wait first-come first-served.
- `Hold`: a request's slot and model lease, released exactly once, when its generation thread has
  really finished (a client that goes away cancels the generation but cannot free the slot early).
- `stream_pieces`: the generation's text pieces, pumped from its thread onto the event loop.
- `WorkerState`: the aliases, the model cache, the slots and the counters `/admin/stats` reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from loraforge.inference.generation import Generation
from loraforge.inference.model_cache import ModelCache


class FifoSlots:
    """A counting semaphore that hands free slots to waiters strictly in arrival order."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self.waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self.waiters if not w.done())

    async def acquire(self) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter in self.waiters:
                self.waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self.release()  # the slot arrived together with the cancellation: pass it on
            raise

    def release(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


@dataclass
class WorkerState:
    token: str
    aliases: dict[str, str]
    cache: ModelCache
    slots: FifoSlots
    started_at: float = field(default_factory=time.time)
    requests_served: int = 0
    generations_cancelled: int = 0
    active: int = 0
    last_generation: dict[str, Any] | None = None


class Hold:
    """What one request holds (its queue slot and model lease), released exactly once: when its
    generation thread has really finished, or at once if generation never started."""

    def __init__(self) -> None:
        self.stack = contextlib.AsyncExitStack()
        self.generation_started = False
        self._released = False
        self._task: asyncio.Task[None] | None = None

    async def release(self) -> None:
        if not self._released:
            self._released = True
            await self.stack.aclose()

    def release_soon(self) -> None:
        """From a callback: release in a task of its own (nothing to await here)."""
        self._task = asyncio.get_running_loop().create_task(self.release())


class HeldStreamingResponse(StreamingResponse):
    """A StreamingResponse that, however it ends, closes its body generator (which cancels the
    generation) and releases what the request holds, even when the client went away before the
    body started. The body runs under anyio cancellation when the client disconnects, where any
    await may be interrupted; so the release itself is tied to the generation thread's end."""

    def __init__(self, content: AsyncGenerator[str, None], hold: Hold) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self._content = content
        self._hold = hold

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self._content.aclose()
            finally:
                if not self._hold.generation_started:
                    await self._hold.release()


async def stream_pieces(state: WorkerState, generation: Generation, hold: Hold) -> AsyncGenerator[str, None]:
    """The generation's text pieces on the event loop. Leaving early (client gone) cancels the
    generation; the slot and lease are released when its thread has finished, not before."""
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def pump() -> None:
        try:
            for piece in generation.pieces():
                loop.call_soon_threadsafe(items.put_nowait, ("piece", piece))
        except BaseException as exc:  # handed to the event loop, which raises it in the request
            loop.call_soon_threadsafe(items.put_nowait, ("error", exc))
        finally:
            loop.call_soon_threadsafe(items.put_nowait, ("end", None))

    def done(_future: asyncio.Future[None]) -> None:
        state.active -= 1
        outcome = generation.outcome
        state.requests_served += 1
        if outcome.cancelled:
            state.generations_cancelled += 1
        state.last_generation = {
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
            "finish_reason": outcome.finish_reason,
            "cancelled": outcome.cancelled,
            "max_tokens": generation.max_new_tokens,
        }
        hold.release_soon()

    generation.start()
    hold.generation_started = True
    state.active += 1
    pumping = loop.run_in_executor(None, pump)
    pumping.add_done_callback(done)
    finished = False
    try:
        while True:
            kind, value = await items.get()
            if kind == "end":
                finished = True
                break
            if kind == "error":
                raise value
            yield value
    finally:
        if not finished:
            generation.cancel()
