"""Deployments: start inference backends on demand, keep them warm, stop them when idle.

One `InferenceManager` per app (`app.state.inference`). Contract used by the gateway:
- `await manager.endpoint_for(served, actor_id=)` -> Endpoint: makes sure a backend serves the model
  (creating/updating a `deployments` row: starting -> ready | failed), loads it, returns where to send
  the request. Raises loraforge.errors.Unavailable(code="model_unavailable") when it cannot start.
- `manager.record_request(deployment_id)` after each request (requests served, last used).
- `await manager.run()` — the lifespan loop (idle timeout); `await manager.close()` stops workers.

Backends (`vllm.choose_backend`): the builtin worker (one process serving every model through its LRU
cache) or vLLM (one `vllm serve` per base model, adapters loaded at runtime). Starting and stopping
the processes is `backend_processes`, talking to them `backend_api`, the rows `deployment_rows`;
this module decides which backend serves what and when it goes.

A deployment is one (base, adapter) pair. Registry versions get a `deployments` row; the virtual
`demo-tiny` (no version) is served and idles out the same way but has no row (deployment_id None).
Request counts are kept in memory and written to the rows by the loop, not on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from loraforge.db.models import utcnow
from loraforge.db.session import Database
from loraforge.errors import Unavailable
from loraforge.inference import vllm
from loraforge.inference.types import Endpoint, ServedModel
from loraforge.services.serving import backend_api, deployment_rows
from loraforge.services.serving.backend_processes import (
    BackendProcess,
    log_tail,
    spawn_vllm,
    spawn_worker,
    stop_process,
    wait_healthy,
)
from loraforge.settings import Settings

log = logging.getLogger("loraforge.inference")

_LOOP_MAX_INTERVAL_SECONDS = 5.0

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
        self._pending_last_used: dict[int, datetime] = {}
        self._backend: str | None = None
        self._stale_swept = False

    # -- backend choice and processes ----------------------------------------------------------

    @property
    def backend(self) -> str:
        if self._backend is None:
            self._backend = vllm.choose_backend(self.settings)
        return self._backend

    async def _ensure_worker(self) -> BackendProcess:
        async with self._process_lock:
            if self.worker is not None and self.worker.alive:
                return self.worker
            if self.worker is not None:
                self._forget_backend(self.worker)
            worker = await spawn_worker(self.settings)
            self.worker = worker
            try:
                await wait_healthy(self.settings, worker)
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
            server = await spawn_vllm(self.settings, base)
            self.vllm_servers[base] = server
            try:
                await wait_healthy(self.settings, server)
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
                    deployment_rows.finish_row(
                        self.database, item.deployment_id, "stopped", error="the inference backend exited"
                    )

    def sweep_stale_rows(self) -> int:
        """Rows left starting/ready by an earlier server whose backend process is gone → stopped."""
        ours = {b.process.pid for b in self._backends()}
        return deployment_rows.sweep_stale_rows(self.database, ours)

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
        deployment_id = await run_in_threadpool(
            deployment_rows.start_row, self.database, served, actor_id, backend
        )
        try:
            memory, model = await backend_api.load_model(
                backend, base, adapter, timeout=self.settings.inference_start_timeout_seconds
            )
        except Unavailable as exc:
            if deployment_id is not None:
                await run_in_threadpool(
                    deployment_rows.finish_row, self.database, deployment_id, "failed", error=exc.message
                )
            raise
        if deployment_id is not None:
            await run_in_threadpool(deployment_rows.ready_row, self.database, deployment_id, memory)
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
            base_still_used = any(other.key[0] == base for other in self.deployed.values())
            await backend_api.unload_model(backend, base, adapter, base_still_used=base_still_used)
        if item.deployment_id is not None:
            await self._flush_counts()
            await run_in_threadpool(
                deployment_rows.finish_row, self.database, item.deployment_id, "stopped",
                audit_reason=audit_reason,
            )  # fmt: skip
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
        await run_in_threadpool(deployment_rows.write_counts, self.database, pending, last_used)

    async def tick(self) -> None:
        """One pass: gone backends, idle deployments, counts and memory written to the rows."""
        for backend in self._backends():
            if not backend.alive:
                tail = log_tail(backend.log_path)
                log.warning("inference backend on port %s exited:\n%s", backend.port, tail)
                self._forget_backend(backend)
                if backend is self.worker:
                    self.worker = None
                else:
                    self.vllm_servers.pop(backend.base or "", None)
        stats = await backend_api.worker_stats(self.worker) if self.worker is not None else None
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
                await run_in_threadpool(deployment_rows.write_memory, self.database, updates)

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
                    await run_in_threadpool(
                        deployment_rows.finish_row, self.database, item.deployment_id, "stopped"
                    )
        backends = self._backends()
        self.worker = None
        self.vllm_servers = {}
        for backend in backends:
            await run_in_threadpool(stop_process, backend.process)
