"""HTTP to OpenAI-compatible upstreams: external providers, the builtin worker and vLLM alike.

- `async_client()`: one pooled `httpx.AsyncClient` per event loop. Building a client costs an SSL
  context (milliseconds), which would land on every request's time to first token; sharing one also
  reuses keep-alive connections to workers. `async_client(key, transport)` keeps one more per key with
  the given transport: the serving layer passes its outbound-policy transport for providers (this
  layer knows no policy; it only carries what it is given).
- `list_models(...)`: `GET <base_url>/models` (synchronous, for the provider service's refresh).
- `UpstreamError`: what an upstream failure becomes. Its `http_status` is what the caller sees: the
  upstream's own 400/404/413/422/429 pass through (they describe the caller's request), everything
  else is 502 (the upstream failed or rejected *our* credentials: never a 401 that would read as if
  the caller's key were wrong) and 504 for timeouts.
- `echo=False` (providers: someone else's server, reached at a user's request): errors say the status
  only, never the upstream's body or the low-level reason, so the server cannot be used to read or
  probe what it can reach. Our own workers' messages are shown (`echo=True`): they explain a failure.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Hashable

import httpx

from loraforge.errors import ServiceError

CONNECT_TIMEOUT_SECONDS = 10.0
MODELS_TIMEOUT_SECONDS = 15.0
_PASS_THROUGH = frozenset({400, 404, 413, 422, 429})
_MAX_MESSAGE = 500
MAX_MODELS_BYTES = 8 * 1024 * 1024


class UpstreamError(ServiceError):
    """An upstream (provider, worker) failed or refused; `http_status` is the status to answer with."""

    default_code = "upstream_error"

    def __init__(self, message: str, *, http_status: int = 502, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.http_status = http_status


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def timeout(read_seconds: float) -> httpx.Timeout:
    return httpx.Timeout(read_seconds, connect=min(CONNECT_TIMEOUT_SECONDS, read_seconds))


_clients: dict[tuple[asyncio.AbstractEventLoop, Hashable], httpx.AsyncClient] = {}


def async_client(
    key: Hashable = None, transport: Callable[[], httpx.AsyncBaseTransport] | None = None
) -> httpx.AsyncClient:
    """The running loop's shared client for `key` (tests run many apps, each on its own loop).

    `transport` builds the transport of a new client for `key`; None: httpx's default.
    """
    loop = asyncio.get_running_loop()
    client = _clients.get((loop, key))
    if client is None or client.is_closed:
        for other in [known for known in _clients if known[0].is_closed()]:
            del _clients[other]  # loops that ended: their clients' sockets went with them
        client = httpx.AsyncClient(
            # No keep-alive limit worth hitting: 16+ concurrent streams to one worker are normal.
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            follow_redirects=False,
            transport=transport() if transport is not None else None,
        )
        _clients[(loop, key)] = client
    return client


async def aclose_client() -> None:
    """Close the running loop's clients (the app's shutdown)."""
    loop = asyncio.get_running_loop()
    for known in [known for known in _clients if known[0] is loop]:
        await _clients.pop(known).aclose()


def upstream_message(body: bytes | str) -> str:
    """The `error.message` of an OpenAI-shaped error body, else the start of the text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:_MAX_MESSAGE]
        if isinstance(error, str):
            return error[:_MAX_MESSAGE]
        if isinstance(parsed.get("detail"), str):
            return str(parsed["detail"])[:_MAX_MESSAGE]
    return text.strip()[:_MAX_MESSAGE] or "no details"


def status_error(label: str, status: int, body: bytes | str, *, echo: bool = True) -> UpstreamError:
    """The error for an upstream's non-2xx answer (with `echo=False`: the status, never the body, which
    may be an internal service's page)."""
    detail = f": {upstream_message(body)}" if echo else ""
    if status in _PASS_THROUGH:
        code = (
            "model_not_found" if status == 404 else "rate_limited" if status == 429 else "upstream_rejected"
        )
        text = f"{label}{detail}" if echo else f"{label} rejected the request ({status})"
        return UpstreamError(text, http_status=status, code=code)
    if status in (401, 403):
        return UpstreamError(
            f"{label} refused the configured credentials ({status}){detail}",
            http_status=502,
            code="upstream_auth_failed",
        )
    text = f"{label} failed ({status}){detail}" if echo else f"{label} answered {status}"
    return UpstreamError(text, http_status=502, code="upstream_error")


def transport_error(label: str, exc: httpx.HTTPError, *, echo: bool = True) -> UpstreamError:
    """The error for a request that got no answer (refused, reset, timed out).

    With `echo=False` every failure to connect or read reads the same: refused, reset and protocol
    errors must not tell the ports of a host apart.
    """
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(f"{label} timed out", http_status=504, code="upstream_timeout")
    if not echo:
        return UpstreamError(f"{label} is unreachable", http_status=502, code="upstream_unreachable")
    reason = str(exc) or type(exc).__name__
    return UpstreamError(f"{label} is unreachable: {reason}", http_status=502, code="upstream_unreachable")


def _read_at_most(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The body up to `limit` bytes, and whether that was all of it (a hostile server may not stop)."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) > limit:
            return bytes(body[:limit]), False
    return bytes(body), True


def list_models(
    base_url: str,
    api_key: str | None,
    *,
    label: str,
    transport: httpx.BaseTransport | None = None,
    echo: bool = True,
) -> list[str]:
    """Model ids from `GET <base_url>/models` (OpenAI's `{"data": [{"id": ...}]}`), sorted, unique.

    `transport`: the connection guard the caller's policy asks for (None: httpx's default).
    """
    url = base_url.rstrip("/") + "/models"
    client = httpx.Client(
        timeout=timeout(MODELS_TIMEOUT_SECONDS), follow_redirects=False, transport=transport,
        trust_env=transport is None,
    )  # fmt: skip
    try:
        with client, client.stream("GET", url, headers=auth_headers(api_key)) as response:
            if response.status_code != 200:
                error_body = _read_at_most(response, 64 * 1024)[0] if echo else b""
                raise status_error(label, response.status_code, error_body, echo=echo)
            content, complete = _read_at_most(response, MAX_MODELS_BYTES)
            if not complete:
                raise UpstreamError(f"{label}: the model list is larger than {MAX_MODELS_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise transport_error(label, exc, echo=echo) from None
    try:
        data = json.loads(content).get("data")
        ids = {str(item["id"]) for item in data if isinstance(item, dict) and item.get("id")}
    except (ValueError, TypeError, AttributeError, KeyError):
        raise UpstreamError(
            f"{label}: GET /models did not answer with an OpenAI model list", code="upstream_invalid"
        ) from None
    return sorted(ids)
