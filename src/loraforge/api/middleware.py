"""Pure-ASGI middleware: request body size limit, Prometheus metrics, security headers.

Pure ASGI rather than BaseHTTPMiddleware so streamed bodies are counted as they arrive and
nothing buffers a whole request or response.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
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


class BodySizeLimitMiddleware:
    """413 for bodies over `max_bytes`: at once by Content-Length, or while counting a stream.

    `route_limits` give named routes (file uploads) their own limit; the first match wins.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, route_limits: Sequence[RouteBodyLimit] = ()) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.route_limits = tuple(route_limits)

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

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
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

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in self.HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
