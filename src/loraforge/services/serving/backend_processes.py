"""Inference backend processes: start one, wait until it answers, stop it, recognise a leftover one.

A backend is the builtin worker (`python -m loraforge.inference.worker`) or one `vllm serve` per base
model. Each gets its own session (so a stop reaches its children), a random bearer token in the
environment, a free port on 127.0.0.1 and a log file `<inference_dir>/worker-<port>.log`. Which
backends run, and for what, is `manager.InferenceManager`'s business.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from starlette.concurrency import run_in_threadpool

from loraforge.errors import Unavailable
from loraforge.inference import vllm
from loraforge.settings import Settings

TOKEN_ENV = "LORAFORGE_WORKER_TOKEN"  # noqa: S105 (a variable name, not a secret)
WORKER_MODULE = "loraforge.inference.worker"
_KILL_AFTER_SECONDS = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class BackendProcess:
    """A started backend server (builtin worker or one vLLM server) we own."""

    kind: str  # builtin | vllm
    process: subprocess.Popen[bytes]
    port: int
    token: str
    log_path: Path
    base: str | None = None  # vLLM: the base model it serves
    adapters: dict[str, str] = field(default_factory=dict)  # vLLM: lora name -> folder

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def stop_process(process: subprocess.Popen[bytes], *, grace: float = _KILL_AFTER_SECONDS) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds (blocking)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


def is_backend_process(pid: int | None) -> bool:
    """Whether `pid` is a running inference backend (our worker or a vLLM server)."""
    if not pid:
        return False
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return WORKER_MODULE in cmdline or "vllm" in cmdline


def _spawn(
    settings: Settings, kind: str, args: list[str], env: dict[str, str], port: int, token: str
) -> BackendProcess:
    settings.inference_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.inference_dir / f"worker-{port}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return BackendProcess(kind=kind, process=process, port=port, token=token, log_path=log_path)


async def spawn_worker(settings: Settings) -> BackendProcess:
    """Start the builtin worker (not yet healthy: see `wait_healthy`)."""
    port = free_port()
    token = secrets.token_urlsafe(32)
    args = [
        sys.executable,
        "-m",
        WORKER_MODULE,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--memory-budget-mb",
        str(settings.inference_memory_budget_mb),
        "--concurrency",
        str(settings.inference_concurrency),
    ]
    env = {**os.environ, TOKEN_ENV: token}
    return await run_in_threadpool(_spawn, settings, "builtin", args, env, port, token)


async def spawn_vllm(settings: Settings, base: str) -> BackendProcess:
    """Start a vLLM server for `base` (not yet healthy: see `wait_healthy`)."""
    port = free_port()
    token = secrets.token_urlsafe(32)
    args = vllm.vllm_command(base=base, port=port, api_key="")
    env = vllm.vllm_env(dict(os.environ), api_key=token)
    server = await run_in_threadpool(_spawn, settings, "vllm", args, env, port, token)
    server.base = base
    return server


async def wait_healthy(settings: Settings, backend: BackendProcess) -> None:
    """Poll `/health` until it answers 200; Unavailable (and the process stopped) when it cannot."""
    deadline = time.monotonic() + settings.inference_start_timeout_seconds
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not backend.alive:
                raise Unavailable(
                    f"the inference backend exited while starting:\n{log_tail(backend.log_path)}",
                    code="model_unavailable",
                )
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(f"{backend.root_url}/health", headers=backend.headers)
                if response.status_code == 200:
                    return
            await asyncio.sleep(0.1)
    await run_in_threadpool(stop_process, backend.process)
    raise Unavailable(
        f"the inference backend did not answer within {settings.inference_start_timeout_seconds:g}s",
        code="model_unavailable",
    )
