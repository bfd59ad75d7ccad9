"""/v1/chat/completions (OpenAI-compatible): validate, resolve the model, forward through the gateway.

Non-streamed answers come back whole; streamed ones are server-sent events re-framed chunk by chunk
(`data: {chunk}` … `data: [DONE]`). The usage chunk goes out only when the caller asked for it
(`stream_options.include_usage`), as with OpenAI. A failure before the first chunk is a normal
OpenAI-shaped error response; one after it is a last `data: {"error": …}` event, which the `openai`
client raises as an APIError. When the caller goes away, the upstream stream is closed, so the
worker stops generating.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from loraforge.api.deps import CurrentUser, SettingsDep
from loraforge.api.openai.errors import OPENAI_ERROR_RESPONSES, error_body
from loraforge.api.openai.schemas.chat import ChatCompletion, ChatCompletionRequest
from loraforge.api.sse import EventStreamResponse, aclose
from loraforge.errors import ServiceError
from loraforge.inference.types import Endpoint
from loraforge.services.serving import gateway

router = APIRouter(tags=["openai"], responses=OPENAI_ERROR_RESPONSES)
logger = logging.getLogger("loraforge.api")

_DONE = b"data: [DONE]\n\n"


def _event(payload: dict[str, Any]) -> bytes:
    return (
        b"data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n\n"
    )


def _record(request: Request, endpoint: Endpoint) -> None:
    if endpoint.deployment_id is not None:
        request.app.state.inference.record_request(endpoint.deployment_id)


async def _events(
    first: dict[str, Any] | None,
    chunks: AsyncIterator[dict[str, Any]],
    *,
    include_usage: bool,
    on_end: Any,
) -> AsyncIterator[bytes]:
    def visible(chunk: dict[str, Any]) -> dict[str, Any] | None:
        if include_usage:
            return chunk
        if not chunk.get("choices"):
            return None  # the usage-only chunk: the caller did not ask for it
        chunk.pop("usage", None)
        return chunk

    try:
        if first is not None and (shown := visible(first)) is not None:
            yield _event(shown)
        async for chunk in chunks:
            if (shown := visible(chunk)) is not None:
                yield _event(shown)
    except ServiceError as exc:
        status = getattr(exc, "http_status", 502)
        yield _event(error_body(status, message=exc.message, code=exc.code))
    except Exception:
        logger.exception("chat stream failed after it started")
        yield _event(
            error_body(500, message="The server had an error while streaming.", code="internal_error")
        )
    finally:
        on_end()
    yield _DONE


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    operation_id="openai_create_chat_completion",
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, user: CurrentUser, settings: SettingsDep
) -> Any:
    """OpenAI's chat completions: `stream` for server-sent events; `<think>` → `reasoning_content`."""
    endpoint = await gateway.resolve(request.app.state, actor=user, model=body.model)
    forward = body.upstream_body()
    timeout = settings.inference_request_timeout_seconds
    if not body.stream:
        try:
            result = await gateway.complete(endpoint, forward, timeout=timeout)
        finally:
            _record(request, endpoint)
        return JSONResponse(result)
    chunks = gateway.stream(endpoint, forward, timeout=timeout)
    try:
        # Pull the first chunk here: an upstream refusal is still a proper error status.
        first: dict[str, Any] | None = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except BaseException:
        _record(request, endpoint)
        await aclose(chunks)
        raise
    events = _events(
        first, chunks, include_usage=body.include_usage, on_end=lambda: _record(request, endpoint)
    )
    return EventStreamResponse(events, also_close=(chunks,))
