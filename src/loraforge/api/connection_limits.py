"""Connection limits for `loraforge serve`: a deadline and a size cap for every request head.

uvicorn closes an idle keep-alive connection (`timeout_keep_alive`), but any byte received cancels
that timer and nothing arms one before a connection's first request: a client that sends half a
request line, or one header line a minute, holds the connection (and what it has sent) for as long
as it likes, and a few thousand such clients exhaust the server's sockets. Its httptools parser,
which `uvicorn[standard]` uses, also accepts a request head of any size.

`HeadLimitedHttpProtocol` is uvicorn's httptools protocol plus: the head (request line and headers)
must be complete within `head_timeout` seconds of the connection opening or of the previous response
(else 408 and close, or just close when no new head was begun), and may not exceed `HEAD_MAX_BYTES`
(else 431 and close). Once the head is in, the body's own deadline is the ASGI middleware's
(`BodySizeLimitMiddleware`, `request_body_timeout_seconds`). A connection upgraded to a WebSocket
belongs to uvicorn's WebSocket protocol from then on and is left alone.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from loraforge.settings import Settings

HEAD_MAX_BYTES = 64 * 1024  # browsers send a few KiB; large cookies stay well below this

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
)


class _HeadTooLarge(Exception):
    """Raised from a parser callback: stops parsing the head at once (httptools wraps it)."""


class HeadLimitedHttpProtocol(HttpToolsProtocol):
    head_timeout: ClassVar[float] = 15.0

    _head_timer: asyncio.TimerHandle | None = None
    _head_size = 0  # bytes of request line and headers of the head being parsed
    _in_head = False  # a head has begun and is not complete yet
    _head_too_large = False

    def _answered(self) -> bool:
        # The protocol makes a request cycle when a head is complete. No cycle, or one whose response
        # is sent: the connection owes us the next head (what still arrives of an early-answered
        # request's body is read and dropped, and is no reason to keep the connection either).
        return self.cycle is None or self.cycle.response_complete

    def _owns_transport(self) -> bool:
        return self.transport is not None and self.transport.get_protocol() is self

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(self.head_timeout, self._head_deadline_passed)

    def _cancel_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_deadline_passed(self) -> None:
        self._head_timer = None
        if not self._owns_transport() or self.transport.is_closing() or not self._answered():
            return
        if self._in_head:  # part of a head arrived: say why it ends
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > HEAD_MAX_BYTES:
            self._head_too_large = True
            raise _HeadTooLarge

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    # httptools parser callbacks and the protocol's own hooks

    def on_message_begin(self) -> None:
        self._in_head, self._head_size = True, 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._head_too_large:
            super().send_400_response(msg)
            return
        self.transport.write(_TOO_LARGE_RESPONSE)
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()  # the next request's head, on this keep-alive connection


def http_protocol(settings: Settings) -> type[HeadLimitedHttpProtocol]:
    """The protocol class with this server's head deadline."""

    class ConfiguredHttpProtocol(HeadLimitedHttpProtocol):
        head_timeout = settings.request_header_timeout_seconds

    return ConfiguredHttpProtocol


def server_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` that apply the limits above."""
    return {"http": http_protocol(settings)}
