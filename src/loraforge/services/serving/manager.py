"""Deployments: start inference backends on demand, keep them warm, stop them when idle.

One `InferenceManager` per app (`app.state.inference`). Contract used by the gateway:
- `await manager.endpoint_for(served, actor_id=)` -> Endpoint: makes sure a backend serves the model
  (creating/updating a `deployments` row: starting -> ready | failed), loads it, returns where to send
  the request. Raises loraforge.errors.Unavailable(code="model_unavailable") when it cannot start.
- `manager.record_request(deployment_id)` after each request (requests served, last used).
- `await manager.run()` — the lifespan loop (idle timeout); `await manager.close()` stops workers.

Backends (`vllm.choose_backend`): the builtin worker (one process, `python -m loraforge.inference.worker`,
serving every model through its LRU cache) or vLLM (one `vllm serve` per base model, adapters loaded at
runtime). Processes get their own session (so a stop reaches their children), a random bearer token in
the environment, a free port on 127.0.0.1 and a log file `<inference_dir>/worker-<port>.log`.

A deployment is one (base, adapter) pair. Registry versions get a `deployments` row; the virtual
`demo-tiny` (no version) is served and idles out the same way but has no row (deployment_id None).
Request counts are kept in memory and written to the rows by the loop, not on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from loraforge.db.models import Deployment, User, utcnow
from loraforge.db.session import Database
from loraforge.errors import Unavailable
from loraforge.inference import vllm
from loraforge.inference.types import Endpoint, ServedModel
from loraforge.services.platform import audit
from loraforge.settings import Settings

log = logging.getLogger("loraforge.inference")

TOKEN_ENV = "LORAFORGE_WORKER_TOKEN"  # noqa: S105 (a variable name, not a secret)
WORKER_MODULE = "loraforge.inference.worker"
ACTIVE_STATUSES = ("starting", "ready")
_KILL_AFTER_SECONDS = 10.0
_LOOP_MAX_INTERVAL_SECONDS = 5.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 20) -> str:
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


# (base, adapter folder, registry version id): one deployment per version, even when two versions
# (or a version and demo-tiny) point at the same files, which the worker then loads only once.
DeployKey = tuple[str, str | None, int | None]


@dataclass
class Deployed:
    """A (base, adapter) pair a backend serves now."""

    key: DeployKey
    name: str
    backend: BackendProcess
    model: str  # upstream model name
    extra_body: dict[str, Any]
    deployment_id: int | None
    last_used: float
    version_id: int | None = None


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


def _is_backend_process(pid: int | None) -> bool:
    """Whether `pid` is a running inference backend (our worker or a vLLM server)."""
    if not pid:
        return False
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return WORKER_MODULE in cmdline or "vllm" in cmdline


class InferenceManager:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.worker: BackendProcess | None = None  # the builtin worker
        self.vllm_servers: dict[str, BackendProcess] = {}  # base -> server
        self.deployed: dict[DeployKey, Deployed] = {}
        self._key_locks: defaultdict[DeployKey, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._process_lock = asyncio.Lock()
        self._pending_requests: defaultdict[int, int] = defaultdict(int)
        self._pending_last_used: dict[int, Any] = {}
        self._backend: str | None = None
        self._stale_swept = False

    # -- backend choice and processes ----------------------------------------------------------

    @property
    def backend(self) -> str:
        if self._backend is None:
            self._backend = vllm.choose_backend(self.settings)
        return self._backend

    def _spawn(
        self, kind: str, args: list[str], env: dict[str, str], port: int, token: str
    ) -> BackendProcess:
        self.settings.inference_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.settings.inference_dir / f"worker-{port}.log"
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

    async def _wait_healthy(self, backend: BackendProcess) -> None:
        deadline = time.monotonic() + self.settings.inference_start_timeout_seconds
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not backend.alive:
                    raise Unavailable(
                        f"the inference backend exited while starting:\n{_tail(backend.log_path)}",
                        code="model_unavailable",
                    )
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"{backend.root_url}/health", headers=backend.headers)
                    if response.status_code == 200:
                        return
                await asyncio.sleep(0.1)
        await run_in_threadpool(stop_process, backend.process)
        raise Unavailable(
            f"the inference backend did not answer within {self.settings.inference_start_timeout_seconds:g}s",
            code="model_unavailable",
        )

    async def _ensure_worker(self) -> BackendProcess:
        async with self._process_lock:
            if self.worker is not None and self.worker.alive:
                return self.worker
            if self.worker is not None:
                self._forget_backend(self.worker)
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
                str(self.settings.inference_memory_budget_mb),
                "--concurrency",
                str(self.settings.inference_concurrency),
            ]
            env = {**os.environ, TOKEN_ENV: token}
            worker = await run_in_threadpool(self._spawn, "builtin", args, env, port, token)
            self.worker = worker
            try:
                await self._wait_healthy(worker)
            except Unavailable:
                self.worker = None
                raise
            return worker

    async def _ensure_vllm(self, base: str) -> BackendProcess:
        async with self._process_lock:
            server = self.vllm_servers.get(base)
            if server is not None and server.alive:
                return server
            if server is not None:
                self._forget_backend(server)
            port = free_port()
            token = secrets.token_urlsafe(32)
            args = vllm.vllm_command(base=base, port=port, api_key="")
            env = vllm.vllm_env(dict(os.environ), api_key=token)
            server = await run_in_threadpool(self._spawn, "vllm", args, env, port, token)
            server.base = base
            self.vllm_servers[base] = server
            try:
                await self._wait_healthy(server)
            except Unavailable:
                self.vllm_servers.pop(base, None)
                raise
            return server

    def _forget_backend(self, backend: BackendProcess) -> None:
        """Drop every deployment served by a backend that is gone."""
        for key, item in list(self.deployed.items()):
            if item.backend is backend:
                del self.deployed[key]
                if item.deployment_id is not None:
                    self._finish_row(item.deployment_id, "stopped", error="the inference backend exited")

    # -- deployment rows ------------------------------------------------------------------------

    def _start_row(self, served: ServedModel, actor_id: int | None, backend: BackendProcess) -> int | None:
        with self.database.session() as session:
            row = Deployment(
                model_version_id=served.version_id,  # None for demo-tiny (no registry row)
                model_name=served.name,
                owner_id=actor_id,
                backend=backend.kind,
                status="starting",
                base_url=f"{backend.root_url}/v1",
                pid=backend.process.pid,
            )
            session.add(row)
            session.flush()
            actor = session.get(User, actor_id) if actor_id is not None else None
            audit.record(
                session,
                action=audit.AuditAction.deployment_started,
                actor=actor,
                target_type="deployment",
                target_id=row.id,
                details={"model": served.name, "backend": backend.kind},
            )
            session.commit()
            return row.id

    def _ready_row(self, deployment_id: int, memory_bytes: int | None) -> None:
        with self.database.session() as session:
            row = session.get(Deployment, deployment_id)
            if row is not None:
                row.status = "ready"
                row.memory_bytes = memory_bytes
                row.last_used_at = utcnow()
                session.commit()

    def _finish_row(
        self, deployment_id: int, status: str, *, error: str | None = None, audit_reason: str | None = None
    ) -> None:
        """Close an active row; `audit_reason` records a `deployment.stopped` by the system."""
        with self.database.session() as session:
            row = session.get(Deployment, deployment_id)
            if row is not None and row.status in ACTIVE_STATUSES:
                row.status = status
                row.error = error
                row.stopped_at = utcnow()
                if audit_reason is not None:
                    audit.record(
                        session,
                        action=audit.AuditAction.deployment_stopped,
                        actor=None,
                        target_type="deployment",
                        target_id=deployment_id,
                        details={"reason": audit_reason},
                    )
                session.commit()

    def sweep_stale_rows(self) -> int:
        """Rows left starting/ready by an earlier server whose backend process is gone → stopped."""
        ours = {b.process.pid for b in self._backends()}
        changed = 0
        with self.database.session() as session:
            rows = session.scalars(select(Deployment).where(Deployment.status.in_(ACTIVE_STATUSES))).all()
            for row in rows:
                if row.pid in ours or _is_backend_process(row.pid):
                    continue
                row.status = "stopped"
                row.error = row.error or "the inference backend is gone (server restart)"
                row.stopped_at = utcnow()
                changed += 1
            session.commit()
        return changed

    def _backends(self) -> list[BackendProcess]:
        found = list(self.vllm_servers.values())
        if self.worker is not None:
            found.append(self.worker)
        return found

    # -- the contract -----------------------------------------------------------------------------

    async def endpoint_for(self, served: ServedModel, *, actor_id: int | None) -> Endpoint:
        adapter = str(served.adapter) if served.adapter is not None else None
        key = (served.base, adapter, served.version_id)
        async with self._key_locks[key]:
            item = self.deployed.get(key)
            if item is not None and item.backend.alive:
                item.last_used = time.monotonic()
                return self._endpoint(item, served.name)
            if item is not None:
                self._forget_backend(item.backend)
            if not self._stale_swept:
                await run_in_threadpool(self.sweep_stale_rows)
                self._stale_swept = True
            item = await self._deploy(served, key, actor_id)
            return self._endpoint(item, served.name)

    def _endpoint(self, item: Deployed, name: str) -> Endpoint:
        return Endpoint(
            base_url=f"{item.backend.root_url}/v1",
            model=item.model if item.backend.kind == "vllm" else name,
            api_key=item.backend.token,
            extra_body=item.extra_body,
            label=name,
            deployment_id=item.deployment_id,
        )

    async def _deploy(self, served: ServedModel, key: DeployKey, actor_id: int | None) -> Deployed:
        base, adapter, _version = key
        if self.backend == "vllm":
            backend = await self._ensure_vllm(base)
        else:
            backend = await self._ensure_worker()
        deployment_id = await run_in_threadpool(self._start_row, served, actor_id, backend)
        try:
            memory, model = await self._load(backend, base, adapter)
        except Unavailable as exc:
            if deployment_id is not None:
                await run_in_threadpool(self._finish_row, deployment_id, "failed", error=exc.message)
            raise
        if deployment_id is not None:
            await run_in_threadpool(self._ready_row, deployment_id, memory)
        extra_body: dict[str, Any] = (
            {"loraforge": {"base": base, "adapter": adapter}} if backend.kind == "builtin" else {}
        )
        item = Deployed(
            key=key,
            name=served.name,
            backend=backend,
            model=model,
            extra_body=extra_body,
            deployment_id=deployment_id,
            last_used=time.monotonic(),
            version_id=served.version_id,
        )
        self.deployed[key] = item
        return item

    async def _load(self, backend: BackendProcess, base: str, adapter: str | None) -> tuple[int | None, str]:
        """Load the model in the backend; (memory bytes if known, upstream model name)."""
        timeout = self.settings.inference_start_timeout_seconds
        async with httpx.AsyncClient(timeout=timeout) as client:
            try:
                if backend.kind == "builtin":
                    response = await client.post(
                        f"{backend.root_url}/admin/load",
                        json={"base": base, "adapter": adapter},
                        headers=backend.headers,
                    )
                    if response.status_code != 200:
                        raise Unavailable(
                            f"the model could not be loaded: {_upstream_message(response)}",
                            code="model_unavailable",
                        )
                    return int(response.json().get("bytes") or 0) or None, base
                if adapter is None:
                    return None, vllm.served_base_name(base)
                name = vllm.lora_module_name(adapter)
                if name not in backend.adapters:
                    response = await client.post(
                        f"{backend.root_url}/v1/load_lora_adapter",
                        json={"lora_name": name, "lora_path": adapter},
                        headers=backend.headers,
                    )
                    if response.status_code != 200:
                        raise Unavailable(
                            f"vLLM could not load the adapter: {_upstream_message(response)}",
                            code="model_unavailable",
                        )
                    backend.adapters[name] = adapter
                return None, name
            except httpx.HTTPError as exc:
                raise Unavailable(
                    f"the inference backend did not answer: {exc}", code="model_unavailable"
                ) from exc

    def record_request(self, deployment_id: int | None) -> None:
        """Count a finished request (written to the row by the loop). Rowless deployments (demo-tiny)
        are kept warm by `endpoint_for`, which every request calls first."""
        if deployment_id is None:
            return
        item = self.deployment_for_row(deployment_id)
        if item is not None:
            item.last_used = time.monotonic()
        self._pending_requests[deployment_id] += 1
        self._pending_last_used[deployment_id] = utcnow()

    # -- explicit deploy / undeploy (REST) --------------------------------------------------------

    def deployment_for_row(self, deployment_id: int) -> Deployed | None:
        return next((d for d in self.deployed.values() if d.deployment_id == deployment_id), None)

    async def undeploy(self, item: Deployed, *, audit_reason: str | None = None) -> None:
        """Stop serving one deployment: unload it in the backend, mark its row stopped."""
        self.deployed.pop(item.key, None)
        base, adapter, _version = item.key
        backend = item.backend
        same_files = any(other.key[:2] == (base, adapter) for other in self.deployed.values())
        if backend.alive and not same_files:
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(timeout=30.0) as client:
                    if backend.kind == "builtin":
                        # Keep the base while another deployment still uses it; drop only the adapter.
                        shared_base = any(other.key[0] == base for other in self.deployed.values())
                        body = (
                            {"base": base, "adapter": adapter} if shared_base and adapter else {"base": base}
                        )
                        if not shared_base or adapter:
                            await client.post(
                                f"{backend.root_url}/admin/unload", json=body, headers=backend.headers
                            )
                    elif adapter is not None:
                        name = vllm.lora_module_name(adapter)
                        await client.post(
                            f"{backend.root_url}/v1/unload_lora_adapter",
                            json={"lora_name": name},
                            headers=backend.headers,
                        )
                        backend.adapters.pop(name, None)
        if item.deployment_id is not None:
            await self._flush_counts()
            await run_in_threadpool(
                self._finish_row, item.deployment_id, "stopped", audit_reason=audit_reason
            )
        await self._stop_unused_backends()

    async def _stop_unused_backends(self) -> None:
        if any(lock.locked() for lock in self._key_locks.values()):
            return  # a deployment is being set up right now and needs its backend; next tick
        async with self._process_lock:
            in_use = {id(item.backend) for item in self.deployed.values()}
            if self.worker is not None and id(self.worker) not in in_use:
                worker, self.worker = self.worker, None
                await run_in_threadpool(stop_process, worker.process)
            for base, server in list(self.vllm_servers.items()):
                if id(server) not in in_use:
                    del self.vllm_servers[base]
                    await run_in_threadpool(stop_process, server.process)

    # -- the loop ----------------------------------------------------------------------------------

    async def _flush_counts(self) -> None:
        if not self._pending_requests:
            return
        pending, self._pending_requests = self._pending_requests, defaultdict(int)
        last_used, self._pending_last_used = self._pending_last_used, {}

        def write() -> None:
            with self.database.session() as session:
                for deployment_id, count in pending.items():
                    row = session.get(Deployment, deployment_id)
                    if row is not None:
                        row.requests_served += count
                        row.last_used_at = last_used.get(deployment_id, row.last_used_at)
                session.commit()

        await run_in_threadpool(write)

    async def _worker_stats(self, backend: BackendProcess) -> dict[str, Any] | None:
        if backend.kind != "builtin" or not backend.alive:
            return None
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(f"{backend.root_url}/admin/stats", headers=backend.headers)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    async def tick(self) -> None:
        """One pass: gone backends, idle deployments, counts and memory written to the rows."""
        for backend in self._backends():
            if not backend.alive:
                log.warning("inference backend on port %s exited:\n%s", backend.port, _tail(backend.log_path))
                self._forget_backend(backend)
                if backend is self.worker:
                    self.worker = None
                else:
                    self.vllm_servers.pop(backend.base or "", None)
        stats = await self._worker_stats(self.worker) if self.worker is not None else None
        busy_bases = {
            entry["base"]: entry
            for entry in (stats or {}).get("loaded", [])
            if entry.get("active_generations")
        }
        now = time.monotonic()
        idle_after = self.settings.inference_idle_timeout_seconds
        for item in list(self.deployed.values()):
            if item.backend.kind == "builtin" and item.key[0] in busy_bases:
                item.last_used = now  # a long generation is use too
                continue
            if now - item.last_used > idle_after:
                log.info("stopping idle deployment %s", item.name)
                await self.undeploy(item, audit_reason="idle")
        if self._backends():
            await self._stop_unused_backends()
        await self._flush_counts()
        if stats is not None:
            memory = {entry["base"]: entry["bytes"] for entry in stats.get("loaded", [])}
            updates = {
                item.deployment_id: memory.get(item.key[0])
                for item in self.deployed.values()
                if item.deployment_id is not None and item.backend.kind == "builtin"
            }
            if updates:
                await run_in_threadpool(self._write_memory, updates)

    def _write_memory(self, updates: dict[int, Any]) -> None:
        with self.database.session() as session:
            for deployment_id, memory in updates.items():
                row = session.get(Deployment, deployment_id)
                if row is not None and memory is not None and row.memory_bytes != memory:
                    row.memory_bytes = memory
            session.commit()

    async def run(self) -> None:
        """The lifespan loop: stale rows once, then a tick every few seconds (faster for short timeouts)."""
        interval = min(_LOOP_MAX_INTERVAL_SECONDS, max(0.2, self.settings.inference_idle_timeout_seconds / 4))
        try:
            await run_in_threadpool(self.sweep_stale_rows)
            self._stale_swept = True
        except Exception:
            log.exception("could not sweep stale deployments")
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("inference manager tick failed")

    async def close(self) -> None:
        """Stop every backend (SIGTERM, SIGKILL after a bound) and mark their deployments stopped."""
        with contextlib.suppress(Exception):
            await self._flush_counts()
        for item in list(self.deployed.values()):
            self.deployed.pop(item.key, None)
            if item.deployment_id is not None:
                with contextlib.suppress(Exception):
                    await run_in_threadpool(self._finish_row, item.deployment_id, "stopped")
        backends = self._backends()
        self.worker = None
        self.vllm_servers = {}
        for backend in backends:
            await run_in_threadpool(stop_process, backend.process)


def _upstream_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return response.text[:500]
