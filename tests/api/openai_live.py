"""Real HTTP for the OpenAI-compatible tests: the app under uvicorn, a builtin worker, a scripted upstream.

The official `openai` client speaks real HTTP, so these tests serve the app with uvicorn on a free
127.0.0.1 port in a thread (stopped by the test), and start `python -m loraforge.inference.worker`
as a subprocess (stopped by PID). `ScriptedUpstream` is a stand-in only for what cannot exist here: a
model that writes `<think>` tags, or an upstream that fails in a chosen way.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from api_helpers import Account
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

START_TIMEOUT = 180.0  # a worker imports torch + transformers: slow on a busy 2-core machine


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadServer:
    """An ASGI app under uvicorn in a daemon thread, on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.sock = free_socket()
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="auto", timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def api_key(http: httpx.Client, account: Account) -> str:
    """A personal API key (`lf_…`) for `account`, as `openai.OpenAI(api_key=...)` takes it."""
    response = http.post("/api/auth/api-keys", json={"name": "openai-test"}, headers=account.headers)
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


class Worker:
    """`python -m loraforge.inference.worker --model <alias>=<folder>`, token in the environment."""

    def __init__(self, models: dict[str, Path], log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.token = secrets.token_urlsafe(24)
        self.models = models
        self.log_path = log_dir / f"worker-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Worker:
        args = [
            sys.executable,
            "-m",
            "loraforge.inference.worker",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        for alias, folder in self.models.items():
            args += ["--model", f"{alias}={folder}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LORAFORGE_")}
        env.update(LORAFORGE_WORKER_TOKEN=self.token, CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("worker not healthy in time")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)


# ---- a scripted OpenAI-compatible upstream --------------------------------------------------------


@dataclass
class Script:
    """What the scripted upstream answers: text pieces (one stream chunk each), or a failure."""

    pieces: list[str] = field(default_factory=lambda: ["hello"])
    usage: bool = True  # report usage (False: like upstreams that never do)
    status: int = 200
    error_message: str = "scripted failure"
    fail_after: int | None = None  # send an error event after this many pieces
    hold_open: bool = False  # after the pieces, wait (until the client goes away)


class ScriptedUpstream:
    """A minimal OpenAI-compatible server whose answers the test sets; records requests and closes."""

    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.stream_closed = threading.Event()
        self.app = Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "thinker", "object": "model"}]})

    def _usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": 7,
            "completion_tokens": len(self.script.pieces),
            "total_tokens": 7 + len(self.script.pieces),
        }

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        script = self.script
        if script.status != 200:
            return JSONResponse(
                {"error": {"message": script.error_message, "type": "invalid_request_error"}},
                status_code=script.status,
            )
        base = {"id": "chatcmpl-scripted", "created": 1700000000, "model": body["model"]}
        if not body.get("stream"):
            answer: dict[str, Any] = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(script.pieces)},
                        "finish_reason": "stop",
                    }
                ],
            }
            if script.usage:
                answer["usage"] = self._usage()
            return JSONResponse(answer)
        return StreamingResponse(self._events(base, body), media_type="text/event-stream")

    async def _events(self, base: dict[str, Any], body: dict[str, Any]) -> AsyncIterator[bytes]:
        script = self.script

        def event(payload: dict[str, Any]) -> bytes:
            return f"data: {json.dumps({**base, 'object': 'chat.completion.chunk', **payload})}\n\n".encode()

        try:
            yield event(
                {
                    "choices": [
                        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                    ]
                }
            )
            for index, piece in enumerate(script.pieces):
                if script.fail_after is not None and index == script.fail_after:
                    yield f"data: {json.dumps({'error': {'message': script.error_message}})}\n\n".encode()
                    return
                yield event({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            while script.hold_open:
                await asyncio.sleep(0.05)
            yield event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if script.usage and (body.get("stream_options") or {}).get("include_usage"):
                yield event({"choices": [], "usage": self._usage()})
            yield b"data: [DONE]\n\n"
        finally:
            # Reached when the gateway closes the connection early (client gone) or at the end.
            self.stream_closed.set()


def wait_until(predicate: Any, timeout: float = 20.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def live_servers(app: Any) -> Iterator[ThreadServer]:
    with ThreadServer(app) as server:
        yield server
