"""HTTP to OpenAI-compatible upstreams: external providers, the builtin worker and vLLM alike.

- `async_client()`: one pooled `httpx.AsyncClient` per event loop. Building a client costs an SSL
  context (milliseconds), which would land on every request's time to first token; sharing one also
  reuses keep-alive connections to workers.
- `list_models(...)`: `GET <base_url>/models` (synchronous, for the provider service's refresh).
- `UpstreamError`: what an upstream failure becomes. Its `http_status` is what the caller sees: the
  upstream's own 400/404/413/422/429 pass through (they describe the caller's request), everything
  else is 502 (the upstream failed or rejected *our* credentials: never a 401 that would read as if
  the caller's key were wrong) and 504 for timeouts.
"""

from __future__ import annotations

import asyncio
import json

import httpx

from loraforge.errors import ServiceError

CONNECT_TIMEOUT_SECONDS = 10.0
MODELS_TIMEOUT_SECONDS = 15.0
_PASS_THROUGH = frozenset({400, 404, 413, 422, 429})
_MAX_MESSAGE = 500


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


_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}


def async_client() -> httpx.AsyncClient:
    """The running loop's shared client (tests run many apps, each on its own loop)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        for other in [known for known in _clients if known.is_closed()]:
            del _clients[other]  # loops that ended: their clients' sockets went with them
        client = httpx.AsyncClient(
            # No keep-alive limit worth hitting: 16+ concurrent streams to one worker are normal.
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            follow_redirects=False,
        )
        _clients[loop] = client
    return client


async def aclose_client() -> None:
    """Close the running loop's client (the app's shutdown)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


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


def status_error(label: str, status: int, body: bytes | str) -> UpstreamError:
    """The error for an upstream's non-2xx answer."""
    message = upstream_message(body)
    if status in _PASS_THROUGH:
        code = (
            "model_not_found" if status == 404 else "rate_limited" if status == 429 else "upstream_rejected"
        )
        return UpstreamError(f"{label}: {message}", http_status=status, code=code)
    if status in (401, 403):
        return UpstreamError(
            f"{label} refused the configured credentials ({status}): {message}",
            http_status=502,
            code="upstream_auth_failed",
        )
    return UpstreamError(f"{label} failed ({status}): {message}", http_status=502, code="upstream_error")


def transport_error(label: str, exc: httpx.HTTPError) -> UpstreamError:
    """The error for a request that got no answer (refused, reset, timed out)."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(f"{label} timed out", http_status=504, code="upstream_timeout")
    reason = str(exc) or type(exc).__name__
    return UpstreamError(f"{label} is unreachable: {reason}", http_status=502, code="upstream_unreachable")


def list_models(base_url: str, api_key: str | None, *, label: str) -> list[str]:
    """Model ids from `GET <base_url>/models` (OpenAI's `{"data": [{"id": ...}]}`), sorted, unique."""
    url = base_url.rstrip("/") + "/models"
    try:
        with httpx.Client(timeout=timeout(MODELS_TIMEOUT_SECONDS), follow_redirects=False) as client:
            response = client.get(url, headers=auth_headers(api_key))
    except httpx.HTTPError as exc:
        raise transport_error(label, exc) from None
    if response.status_code != 200:
        raise status_error(label, response.status_code, response.content)
    try:
        data = response.json().get("data")
        ids = {str(item["id"]) for item in data if isinstance(item, dict) and item.get("id")}
    except (ValueError, TypeError, AttributeError, KeyError):
        raise UpstreamError(
            f"{label}: GET /models did not answer with an OpenAI model list", code="upstream_invalid"
        ) from None
    return sorted(ids)
