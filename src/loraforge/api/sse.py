"""Server-Sent Events responses for every streaming route (/v1 chat, chat, playground)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

EVENT_STREAM = "text/event-stream"


async def aclose(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator (or anything with `aclose`); plain iterators need nothing."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


class EventStreamResponse(StreamingResponse):
    """SSE whose iterators are always closed however the response ends (finished, client gone,
    cancelled): an abandoned generator would otherwise be closed only by the garbage collector, and its
    cleanup (closing the upstream stream so the worker stops generating, storing a partial answer)
    would wait for that. `also_close`: upstream iterators the body reads from."""

    media_type = EVENT_STREAM

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        also_close: Sequence[AsyncIterator[Any]] = (),
        status_code: int = 200,
    ) -> None:
        # no-cache: never replayed from a cache; X-Accel-Buffering: nginx passes each event on at once.
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(content, status_code=status_code, headers=headers)
        self._closing = (content, *also_close)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                for iterator in self._closing:
                    await aclose(iterator)
