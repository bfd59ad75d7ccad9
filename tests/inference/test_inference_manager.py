"""The inference manager with a real database and a real builtin worker process on the demo model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from loraforge.db.models import AuditLog, Deployment, ModelVersion, RegisteredModel, User
from loraforge.db.session import Database
from loraforge.inference.types import ServedModel
from loraforge.services.serving.manager import InferenceManager
from loraforge.settings import Settings

HELLO = [{"role": "user", "content": "hello"}]


def run_async(coroutine: Coroutine[Any, Any, None]) -> None:
    """`asyncio.run` in its own thread: Playwright's sync API (the e2e tests, same session) leaves an event
    loop running in the main thread, where `asyncio.run` refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        jwt_secret=SecretStr("test-signing-key-" + "x" * 32),
        inference_backend="builtin",
        inference_idle_timeout_seconds=1.0,
        inference_start_timeout_seconds=120.0,
    )


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    database = Database(settings.sqlalchemy_url)
    yield database
    database.dispose()


def _served(database: Database, folder: Path) -> ServedModel:
    """A registered full-weights model version pointing at `folder` (rows written directly)."""
    with database.session() as session:
        user = User(username="owner", email="owner@example.com", password_hash="x")
        session.add(user)
        session.flush()
        model = RegisteredModel(owner_id=user.id, name="tiny-base", kind="base", source="local")
        session.add(model)
        session.flush()
        version = ModelVersion(model_id=model.id, number=1, weights="full", status="ready", path=str(folder))
        session.add(version)
        session.flush()
        model.current_version_id = version.id
        session.commit()
        return ServedModel(
            name="tiny-base", model_id=model.id, version_id=version.id, owner_id=user.id, base=str(folder)
        )


def _rows(database: Database) -> list[Deployment]:
    with database.session() as session:
        return list(session.scalars(select(Deployment).order_by(Deployment.id)).all())


def _chat(endpoint: object) -> dict[str, object]:
    body = {"model": endpoint.model, "messages": HELLO, "max_tokens": 3, **endpoint.extra_body}  # type: ignore[attr-defined]
    response = httpx.post(
        f"{endpoint.base_url}/chat/completions",  # type: ignore[attr-defined]
        json=body,
        headers={"Authorization": f"Bearer {endpoint.api_key}"},  # type: ignore[attr-defined]
        timeout=60,
    )
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_concurrent_first_requests_start_one_worker_and_one_deployment(
    settings: Settings, database: Database, demo_folder: Path
) -> None:
    served = _served(database, demo_folder)
    manager = InferenceManager(settings, database)

    async def scenario() -> None:
        try:
            first, second = await asyncio.gather(
                manager.endpoint_for(served, actor_id=served.owner_id),
                manager.endpoint_for(served, actor_id=served.owner_id),
            )
            assert first == second and first.deployment_id is not None
            assert first.base_url.startswith("http://127.0.0.1:") and first.base_url.endswith("/v1")
            assert first.extra_body == {"loraforge": {"base": str(demo_folder), "adapter": None}}
            assert manager.worker is not None
            pid = manager.worker.process.pid
            rows = _rows(database)
            assert len(rows) == 1 and rows[0].status == "ready" and rows[0].pid == pid
            assert rows[0].memory_bytes and rows[0].memory_bytes > 0
            assert rows[0].backend == "builtin" and rows[0].owner_id == served.owner_id

            result = await asyncio.to_thread(_chat, first)
            assert result["usage"]
            manager.record_request(first.deployment_id)
            await manager.tick()
            assert _rows(database)[0].requests_served == 1

            # The virtual demo-tiny (no registry version) shares the worker and gets a row of its own.
            demo = ServedModel(
                name="demo-tiny", model_id=None, version_id=None, owner_id=None, base=str(demo_folder)
            )
            endpoint = await manager.endpoint_for(demo, actor_id=None)
            assert endpoint.deployment_id is not None and endpoint.model == "demo-tiny"
            assert manager.worker.process.pid == pid
            demo_row = next(r for r in _rows(database) if r.id == endpoint.deployment_id)
            assert demo_row.model_version_id is None and demo_row.model_name == "demo-tiny"
            assert len(_rows(database)) == 2
            await asyncio.to_thread(_chat, endpoint)
        finally:
            await manager.close()
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert {row.status for row in _rows(database)} == {"stopped"}

    run_async(scenario())


def test_idle_deployments_stop_and_the_worker_exits(
    settings: Settings, database: Database, demo_folder: Path
) -> None:
    served = _served(database, demo_folder)
    manager = InferenceManager(settings, database)

    async def scenario() -> None:
        loop = asyncio.create_task(manager.run())
        try:
            endpoint = await manager.endpoint_for(served, actor_id=served.owner_id)
            assert manager.worker is not None
            process = manager.worker.process
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (
                process.poll() is None or _rows(database)[0].status != "stopped"
            ):
                await asyncio.sleep(0.1)
            assert process.poll() is not None, "the idle worker should have exited"
            row = _rows(database)[0]
            assert row.id == endpoint.deployment_id and row.status == "stopped" and row.stopped_at
            assert manager.worker is None and manager.deployed == {}
            # Served again on demand: a new worker, a new deployment row.
            again = await manager.endpoint_for(served, actor_id=served.owner_id)
            assert again.deployment_id != endpoint.deployment_id
        finally:
            loop.cancel()
            await manager.close()
        with database.session() as session:
            actions = session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
        assert actions.count("deployment.started") == 2 and "deployment.stopped" in actions

    run_async(scenario())


def test_stale_rows_of_a_gone_worker_become_stopped(
    settings: Settings, database: Database, demo_folder: Path
) -> None:
    served = _served(database, demo_folder)
    gone = psutil.Popen(["true"])
    gone.wait()
    with database.session() as session:
        session.add(Deployment(model_version_id=served.version_id, status="ready", pid=gone.pid))
        session.add(Deployment(model_version_id=served.version_id, status="starting", pid=None))
        session.add(Deployment(model_version_id=served.version_id, status="failed", pid=None, error="boom"))
        session.commit()
    manager = InferenceManager(settings, database)
    assert manager.sweep_stale_rows() == 2
    assert [row.status for row in _rows(database)] == ["stopped", "stopped", "failed"]


def test_a_model_that_cannot_load_marks_the_deployment_failed(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    served = _served(database, empty)
    manager = InferenceManager(settings, database)

    async def scenario() -> None:
        from loraforge.errors import Unavailable

        try:
            with pytest.raises(Unavailable) as failure:
                await manager.endpoint_for(served, actor_id=served.owner_id)
            assert failure.value.code == "model_unavailable"
        finally:
            await manager.close()

    run_async(scenario())
    row = _rows(database)[0]
    assert row.status == "failed" and row.error
