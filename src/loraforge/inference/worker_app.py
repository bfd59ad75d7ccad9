"""The builtin worker's HTTP app: OpenAI-shaped routes and errors over the model cache.

The endpoints are listed in `loraforge.inference.worker`, which runs this app. What one request holds
while it generates (queue slot, model lease) and how its pieces reach the event loop is `in_flight`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from loraforge.inference.generation import (
    Generation,
    RequestError,
    parse_messages,
    parse_sampling,
    render_prompt,
)
from loraforge.inference.in_flight import HeldStreamingResponse, Hold, WorkerState, stream_pieces
from loraforge.inference.model_cache import adapter_base

log = logging.getLogger("loraforge.inference.worker")


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status == 401:
        kind = "authentication_error"
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": param, "code": code}}, status_code=status
    )


def _resolve_target(state: WorkerState, body: dict[str, Any]) -> tuple[str, str | None]:
    """(base, adapter folder) for a request: the `loraforge` extension, else a `--model` alias."""
    extension = body.get("loraforge")
    if extension is not None:
        if not isinstance(extension, dict) or not isinstance(extension.get("base"), str):
            raise RequestError("'loraforge.base' must be a string", param="loraforge.base")
        adapter = extension.get("adapter")
        if adapter is not None and not isinstance(adapter, str):
            raise RequestError("'loraforge.adapter' must be a string or null", param="loraforge.adapter")
        return extension["base"], adapter or None
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("'model' is required", param="model")
    folder = state.aliases.get(model)
    if folder is None:
        raise RequestError(f"The model '{model}' does not exist", status=404, param="model")
    base = adapter_base(folder)
    if base:
        return base, folder  # an alias naming an adapter folder serves it on its recorded base
    return folder, None


def _usage(generation: Generation) -> dict[str, int]:
    outcome = generation.outcome
    return {
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
    }


def create_worker_app(state: WorkerState) -> FastAPI:
    app = FastAPI(title="LoRAForge inference worker", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.worker = state

    def authenticate(request: Request) -> None:
        # A dependency, not an HTTP middleware: BaseHTTPMiddleware would sit between the streaming
        # response and the client and change how a disconnect reaches the generation.
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.encode(), state.token.encode()):
            raise RequestError("Incorrect API key provided", status=401, code="invalid_api_key")

    protected = APIRouter(dependencies=[Depends(authenticate)])

    @app.exception_handler(RequestError)
    async def _request_error(_request: Request, exc: RequestError) -> JSONResponse:
        return _error(exc.status, exc.message, param=exc.param, code=exc.code)

    # Everything else in OpenAI's shape too: unknown paths, wrong methods, unexpected failures.
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return _error(500, f"internal error: {type(exc).__name__}", code="internal_error")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @protected.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        created = int(state.started_at)
        return {
            "object": "list",
            "data": [
                {"id": alias, "object": "model", "created": created, "owned_by": "loraforge"}
                for alias in sorted(state.aliases)
            ],
        }

    @protected.get("/admin/stats")
    async def stats() -> dict[str, Any]:
        return {
            "loaded": state.cache.stats(),
            "memory_bytes": state.cache.used_bytes(),
            "memory_budget_bytes": state.cache.budget_bytes,
            "loads": state.cache.loads,
            "evictions": state.cache.evictions,
            "requests_served": state.requests_served,
            "generations_cancelled": state.generations_cancelled,
            "active_generations": state.active,
            "queue_depth": state.slots.waiting,
            "concurrency": state.slots.size,
            "last_generation": state.last_generation,
        }

    async def _json_body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RequestError("the body must be JSON") from None
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object")
        return body

    @protected.post("/admin/load")
    async def load(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        base, adapter = _resolve_target(state, {"loraforge": body})
        entry = await state.cache.base(base)
        if adapter is not None:
            await state.cache.ensure_adapter(entry, adapter)
        return {"base": base, "adapter": adapter, "bytes": entry.bytes}

    @protected.post("/admin/unload")
    async def unload(request: Request) -> dict[str, Any]:
        body = await _json_body(request) if await request.body() else {}
        base, adapter = body.get("base"), body.get("adapter")
        if (base is not None and not isinstance(base, str)) or (
            adapter is not None and not isinstance(adapter, str)
        ):
            raise RequestError("'base' and 'adapter' must be strings")
        return {"unloaded": await state.cache.unload(base, adapter)}

    @protected.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = await _json_body(request)
        messages = parse_messages(body)
        params = parse_sampling(body)
        base, adapter = _resolve_target(state, body)
        model_name = body.get("model") if isinstance(body.get("model"), str) else base
        stream = bool(body.get("stream"))
        stream_options = body.get("stream_options") or {}
        include_usage = bool(isinstance(stream_options, dict) and stream_options.get("include_usage"))
        ignore_eos = bool(body.get("ignore_eos"))

        hold = Hold()
        held = hold.stack
        try:
            await state.slots.acquire()
            held.callback(state.slots.release)
            entry = await held.enter_async_context(state.cache.lease(base, adapter))
            tokenizer = entry.tokenizer_for(adapter)
            prompt_ids = render_prompt(tokenizer, messages)
            generation = Generation(entry.model, tokenizer, prompt_ids, params, ignore_eos=ignore_eos)
        except BaseException:
            await held.aclose()
            raise

        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())

        if not stream:
            finished = asyncio.Event()
            hold.stack.callback(finished.set)
            try:
                async with contextlib.aclosing(stream_pieces(state, generation, hold)) as pieces:
                    text = "".join([piece async for piece in pieces])
            finally:
                if not hold.generation_started:
                    await hold.release()
            await finished.wait()  # slot and lease released: the next request may start
            if generation.outcome.error:
                return _error(500, f"generation failed: {generation.outcome.error}", code="generation_failed")
            return JSONResponse(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model_name,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "logprobs": None,
                            "finish_reason": generation.outcome.finish_reason,
                        }
                    ],
                    "usage": _usage(generation),
                }
            )

        def chunk(delta: dict[str, Any], finish: str | None, usage: dict[str, int] | None = None) -> str:
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model_name,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                if finish != "usage"
                else [],
            }
            if include_usage:
                payload["usage"] = usage
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        async def events() -> AsyncGenerator[str, None]:
            yield chunk({"role": "assistant", "content": ""}, None)
            # aclosing: closing events() must close stream_pieces() too, which cancels the generation.
            async with contextlib.aclosing(stream_pieces(state, generation, hold)) as pieces:
                async for piece in pieces:
                    yield chunk({"content": piece}, None)
            if generation.outcome.error:
                error = {"message": f"generation failed: {generation.outcome.error}", "type": "server_error"}
                yield f"data: {json.dumps({'error': error})}\n\n"
            else:
                yield chunk({}, generation.outcome.finish_reason)
                if include_usage:
                    yield chunk({}, "usage", _usage(generation))
            yield "data: [DONE]\n\n"

        return HeldStreamingResponse(events(), hold)

    app.include_router(protected)
    return app
