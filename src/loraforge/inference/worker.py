"""The builtin inference worker: an OpenAI-compatible HTTP server over transformers + PEFT.

    python -m loraforge.inference.worker --host 127.0.0.1 --port P [--model alias=folder ...]
        [--memory-budget-mb N] [--concurrency N]

The bearer token comes from the environment (`LORAFORGE_WORKER_TOKEN`), never the command line (which
other local users can read in the process list). Endpoints (all but /health need the token):

- `POST /v1/chat/completions`: the OpenAI body plus `loraforge: {"base": <folder or hub id>,
  "adapter": <folder> | null}`; without `loraforge`, `model` must be an alias given with `--model`.
  Streams SSE (`data: {chunk}` ... `data: [DONE]`), honours `stream_options.include_usage`; also accepts
  vLLM's `ignore_eos`. The worker does not split `<think>` (the gateway does, for every backend).
- `GET /v1/models`: the aliases. `GET /health`.
- `POST /admin/load {"base", "adapter"}` warms a model, `POST /admin/unload {"base"?, "adapter"?}`
  (nothing: every idle base), `GET /admin/stats`.

At most `--concurrency` generations run at once; the others wait first-come first-served (their number
is `queue_depth` in the stats). A client that disconnects from a stream cancels its generation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from loraforge.inference.generation import (
    Generation,
    RequestError,
    parse_messages,
    parse_sampling,
    render_prompt,
)
from loraforge.inference.model_cache import ModelCache, adapter_base

TOKEN_ENV = "LORAFORGE_WORKER_TOKEN"  # noqa: S105 (a variable name, not a secret)
log = logging.getLogger("loraforge.inference.worker")


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


class _Hold:
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


class _HeldStreamingResponse(StreamingResponse):
    """A StreamingResponse that, however it ends, closes its body generator (which cancels the
    generation) and releases what the request holds, even when the client went away before the
    body started. The body runs under anyio cancellation when the client disconnects, where any
    await may be interrupted; so the release itself is tied to the generation thread's end."""

    def __init__(self, content: AsyncGenerator[str, None], hold: _Hold) -> None:
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


async def _pieces(state: WorkerState, generation: Generation, hold: _Hold) -> AsyncGenerator[str, None]:
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

        hold = _Hold()
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
                async with contextlib.aclosing(_pieces(state, generation, hold)) as pieces:
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
            # aclosing: closing events() must close _pieces() too, which cancels the generation.
            async with contextlib.aclosing(_pieces(state, generation, hold)) as pieces:
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

        return _HeldStreamingResponse(events(), hold)

    app.include_router(protected)
    return app


def _parse_aliases(values: list[str]) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for value in values:
        alias, sep, folder = value.partition("=")
        if not sep or not alias or not folder:
            raise SystemExit(f"--model expects alias=folder, got {value!r}")
        aliases[alias] = str(Path(folder).expanduser().resolve())
    return aliases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loraforge.inference.worker", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", action="append", default=[], metavar="ALIAS=FOLDER")
    parser.add_argument("--memory-budget-mb", type=int, default=8192)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise SystemExit(f"{TOKEN_ENV} must be set")
    if args.concurrency < 1:
        raise SystemExit("--concurrency must be >= 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = WorkerState(
        token=token,
        aliases=_parse_aliases(args.model),
        cache=ModelCache(budget_bytes=args.memory_budget_mb * 1024 * 1024, device=args.device),
        slots=FifoSlots(args.concurrency),
    )
    # Import the heavy libraries before answering /health, so that "healthy" means ready to load.
    import peft  # noqa: F401
    import transformers  # noqa: F401
    import uvicorn

    uvicorn.run(create_worker_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
