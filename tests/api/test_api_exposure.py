"""What the platform shows of itself: /metrics only to a scraper's token or an admin, a
Content-Security-Policy on every response, and a database file only its owner can read."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import Api, assert_error
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from loraforge.app import create_app
from loraforge.db.session import Database
from loraforge.settings import Settings

METRICS_TOKEN = "scrape-" + "t" * 32


def test_metrics_need_an_admin_without_a_metrics_token(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    assert_error(client.get("/metrics"), 401, "not_authenticated")
    assert_error(client.get("/metrics", headers={"Authorization": "Basic YTpi"}), 401)
    assert_error(client.get("/metrics", headers={"Authorization": "Bearer not-a-token"}), 401)
    assert_error(client.get("/metrics", headers=alice.headers), 403, "forbidden")
    admin = api.admin()
    response = client.get("/metrics", headers=admin.headers)
    assert response.status_code == 200 and "loraforge_http_requests_total" in response.text
    key = client.post("/api/auth/api-keys", json={"name": "prometheus"}, headers=admin.headers).json()["key"]
    assert client.get("/metrics", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_metrics_token_lets_a_scraper_in(settings: Settings) -> None:
    configured = settings.model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)})
    with TestClient(create_app(configured)) as client:
        api = Api(client)
        alice = api.account("alice")
        ok = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert ok.status_code == 200 and "loraforge_http_request_duration_seconds" in ok.text
        assert_error(client.get("/metrics"), 401)
        assert_error(client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}x"}), 401)
        assert_error(client.get("/metrics", headers=alice.headers), 403)
        assert client.get("/metrics", headers=api.admin().headers).status_code == 200


def _policy(response: object) -> dict[str, str]:
    header = response.headers["content-security-policy"]  # type: ignore[attr-defined]
    directives = (part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    return {name: value for name, value in directives}


def test_every_response_carries_a_content_security_policy(settings: Settings, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html><div id=app></div></html>", encoding="utf-8")
    (dist / "assets" / "app-1.js").write_text("console.log(1)", encoding="utf-8")
    with TestClient(create_app(settings.model_copy(update={"web_dist_dir": dist}))) as client:
        for path in ("/", "/jobs/1", "/assets/app-1.js", "/api/health", "/api/no-such-route"):
            policy = _policy(client.get(path))
            assert policy["script-src"] == "'self' 'wasm-unsafe-eval'", path  # no inline script, no JS eval
            assert policy["style-src"] == "'self' 'unsafe-inline'"
            assert policy["object-src"] == "'none'" and policy["base-uri"] == "'self'"
            assert policy["frame-ancestors"] == "'none'"
            assert policy["connect-src"] == "'self' ws://testserver wss://testserver"
        # A Host header that is not a plain host[:port] is never copied into the policy.
        odd = _policy(client.get("/api/health", headers={"Host": "evil; script-src *"}))
        assert odd["connect-src"] == "'self'" and odd["script-src"] == "'self' 'wasm-unsafe-eval'"
        # The Swagger page needs its CDN bundle and inline start-up script; nothing else does.
        docs = _policy(client.get("/api/docs"))
        assert "https://cdn.jsdelivr.net" in docs["script-src"] and docs["frame-ancestors"] == "'none'"


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual default, under which SQLite creates files 0644
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_the_sqlite_database_and_its_wal_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "loraforge.db"
    path.parent.mkdir()
    database = Database(f"sqlite:///{path}")
    try:
        with database.engine.begin() as connection:  # WAL mode: -wal and -shm appear with the write
            connection.execute(text("CREATE TABLE t (a INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(f.exists() for f in files)
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        database.dispose()

    # A file an older version left readable is made owner-only on the next start.
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    old.chmod(0o644)
    database = Database(f"sqlite:///{old}")
    try:
        assert database.ping()
        assert _mode(old) == 0o600
    finally:
        database.dispose()
