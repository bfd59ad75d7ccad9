"""API fixtures: settings on a temporary data dir, the app under TestClient, and request helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import ADMIN_PASSWORD, ADMIN_USERNAME, Api
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from loraforge.app import create_app
from loraforge.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        jwt_secret=SecretStr("test-signing-key-" + "x" * 32),
        admin_username=ADMIN_USERNAME,
        admin_email="admin@example.com",
        admin_password=SecretStr(ADMIN_PASSWORD),
        web_dist_dir=tmp_path / "no-dist",
        max_body_bytes=64 * 1024,
        # Still argon2id, at a cost that keeps a few hundred logins in the suite fast.
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


@pytest.fixture(scope="session")
def demo_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny demo model, built once per session (in a subprocess: this process never imports torch)."""
    import subprocess
    import sys

    target = tmp_path_factory.mktemp("models") / "demo-tiny"
    subprocess.run(
        [sys.executable, "-m", "loraforge", "demo-model", str(target)], check=True, capture_output=True
    )
    return target


@pytest.fixture
def demo_model(settings: Settings, demo_model_cache: Path) -> Path:
    """`<data_dir>/models/demo-tiny` pointing at the session's demo model (jobs naming `demo-tiny` use it)."""
    link = settings.models_dir / "demo-tiny"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(demo_model_cache, target_is_directory=True)
    return link
