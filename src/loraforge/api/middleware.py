"""Pure-ASGI middleware: request body size limit and deadline, Prometheus metrics, security headers.

Pure ASGI rather than BaseHTTPMiddleware so streamed bodies are counted as they arrive and
nothing buffers a whole request or response.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loraforge.api.body_limits import RouteBodyLimit
from loraforge.api.openai.errors import error_body as openai_error_body
from loraforge.api.openai.errors import is_openai_path

_TOO_LARGE_MESSAGE = "request body exceeds the limit of {limit} bytes"


def _error_body(status: int, code: str, message: str, path: str) -> bytes:
    """The project's error shape, or OpenAI's under /v1 (the official client reads only that one)."""
    if is_openai_path(path):
        return json.dumps(openai_error_body(status, message=message, code=code)).encode()
    return json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()


class RequestBodyTimeout(HTTPException):
    """The body did not arrive in time. Raised inside the route's body read (like the 413 below) so
    the route stops at once; `body_timeout_response` renders it."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, f"the request body arrived too slowly (budget: {seconds:g} s plus 1 s per 64 KiB)"
        )


async def body_timeout_response(request: Request, exc: Exception) -> Response:
    """408 in the error shape. `Connection: close`: the rest of the body may still be on its way, and
    the connection must not be read again as the next request."""
    assert isinstance(exc, RequestBodyTimeout)
    body = _error_body(408, "request_timeout", str(exc.detail), request.url.path)
    return Response(body, status_code=408, media_type="application/json", headers={"connection": "close"})


MIN_BODY_BYTES_PER_SECOND = 64 * 1024


class BodySizeLimitMiddleware:
    """413 for bodies over `max_bytes`: at once by Content-Length, or while counting a stream; 408 for a
    body that falls behind its budget: `body_timeout_seconds` after the request's head plus one second per
    `MIN_BODY_BYTES_PER_SECOND` received. A client that declares a large body and sends it a byte at a
    time would otherwise hold a connection for ever, while a big upload over a slow link keeps earning time.

    `route_limits` give named routes (file uploads) their own limit; the first match wins.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        route_limits: Sequence[RouteBodyLimit] = (),
        body_timeout_seconds: float | None = None,
    ) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.route_limits = tuple(route_limits)
        self.body_timeout_seconds = body_timeout_seconds

    def limit_for(self, scope: Scope) -> int:
        method, path = scope.get("method", ""), scope.get("path", "")
        for rule in self.route_limits:
            if rule.method == method and rule.path.fullmatch(path):
                return rule.max_bytes
        return self.default_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                declared = value
                break
        if declared is not None:
            if not declared.isdigit():
                await _send_error(send, 400, "bad_request", "invalid Content-Length header", scope["path"])
                return
            if int(declared) > limit:
                message = _TOO_LARGE_MESSAGE.format(limit=limit)
                await _send_error(send, 413, "payload_too_large", message, scope["path"])
                return

        received = 0
        max_bytes = limit
        timeout = self.body_timeout_seconds
        started = asyncio.get_running_loop().time()
        body_complete = False

        async def limited_receive() -> Message:
            nonlocal received, body_complete
            if body_complete or timeout is None:
                # After the body only `http.disconnect` is left to wait for (streaming responses
                # listen for it for as long as they stream): no deadline on that.
                message = await receive()
            else:
                deadline = started + timeout + received / MIN_BODY_BYTES_PER_SECOND
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    raise RequestBodyTimeout(timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > max_bytes:
                    # Raised inside the route's body read, so the app's error handler answers it
                    # with the error shape before any response has started.
                    raise HTTPException(413, _TOO_LARGE_MESSAGE.format(limit=max_bytes))
            return message

        await self.app(scope, limited_receive, send)


async def _send_error(send: Send, status: int, code: str, message: str, path: str) -> None:
    body = _error_body(status, code, message, path)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class HttpMetrics:
    """Request counts and latencies per route template (never the raw path: unbounded labels)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "loraforge_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "loraforge_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            registry=registry,
        )


def _route_template(scope: Scope) -> str | None:
    """The matched route's path template including router prefixes, e.g. `/api/admin/users/{user_id}`.

    FastAPI keeps routes of included routers with their own (unprefixed) path and records the
    effective full path in its scope entry; plain Starlette routes carry the full path themselves.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path", None)
    if isinstance(path, str) and path:
        return path
    route = scope.get("route")
    route_path = getattr(route, "path", None)
    return route_path if isinstance(route_path, str) else None


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            template = _route_template(scope)
            # Unmatched paths (the SPA, scanners) share one label so the series count stays bounded.
            label = str(template) if template else "<unmatched>"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, label, str(status)).inc()
            self.metrics.latency.labels(method, label).observe(time.perf_counter() - started)


# The SPA's Content-Security-Policy: its own scripts only (no inline script, no eval), so injected
# markup cannot run code. 'wasm-unsafe-eval' lets the upload's SHA-256 (hash-wasm) compile its
# WebAssembly; it allows no JavaScript eval. Element Plus sets inline `style` attributes, hence
# 'unsafe-inline' for styles only; the icon is a `data:` URL. `{connect}` adds the same-origin
# WebSocket URLs: browsers that predate CSP 3 do not count ws:/wss: as 'self'.
_APP_POLICY = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'{connect}; frame-ancestors 'none'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'"
)
# FastAPI's Swagger page (/api/docs) loads its bundle from jsDelivr and starts it with an inline
# script; it shows only the OpenAPI document, so it alone gets those two allowances.
_DOCS_PREFIX = "/api/docs"
_DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; frame-ancestors 'none'; "
    "object-src 'none'; base-uri 'self'"
)
# A Host header that is a plain host[:port] (anything else is left out of the policy, never echoed).
_PLAIN_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


def content_security_policy(scope: Scope) -> str:
    """The policy for one response (the docs page's, or the app's with this host's WebSocket URLs)."""
    if str(scope.get("path", "")).startswith(_DOCS_PREFIX):
        return _DOCS_POLICY
    host = next((value for name, value in scope.get("headers", []) if name == b"host"), b"")
    text = host.decode("latin-1")
    connect = f" ws://{text} wss://{text}" if _PLAIN_HOST.fullmatch(text) else ""
    return _APP_POLICY.format(connect=connect)


class SecurityHeadersMiddleware:
    """Conservative defaults for every response; the SPA needs nothing looser."""

    HEADERS = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = (b"content-security-policy", content_security_policy(scope).encode("latin-1"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in (*self.HEADERS, policy) if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
