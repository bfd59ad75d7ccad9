"""Whose address the server records and throttles: X-Forwarded-For counts only from a trusted proxy.

The first tests run the real `loraforge serve` on a loopback port (uvicorn's own default would believe
the header from 127.0.0.1: a forged address in the audit log, and a new address for every login guess).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import ADMIN_PASSWORD, ADMIN_USERNAME, DEFAULT_PASSWORD, Api
from fastapi.testclient import TestClient

START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(data_dir: Path, **env: str) -> Iterator[str]:
    """`loraforge serve` on 127.0.0.1 with its own data directory; yields its base URL."""
    port = _free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LORAFORGE_")}
    environment.update(
        LORAFORGE_DATA_DIR=str(data_dir),
        LORAFORGE_ADMIN_USERNAME=ADMIN_USERNAME,
        LORAFORGE_ADMIN_PASSWORD=ADMIN_PASSWORD,
        LORAFORGE_LOG_LEVEL="warning",
        LORAFORGE_PASSWORD_HASH_TIME_COST="1",
        LORAFORGE_PASSWORD_HASH_MEMORY_KIB="1024",
        # Per account and address 2 failures, per address 6.
        LORAFORGE_LOGIN_MAX_FAILURES="2",
        **env,
    )
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "loraforge", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            log_tail = log_path.read_text(errors="replace")[-3000:]
            assert process.poll() is None, log_tail
            assert time.monotonic() < deadline, "server did not start:\n" + log_tail
            try:
                if httpx.get(f"{base_url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _login(http: httpx.Client, username: str, password: str, forwarded_for: str) -> httpx.Response:
    return http.post(
        "/api/auth/login",
        json={"username_or_email": username, "password": password},
        headers={"X-Forwarded-For": forwarded_for},
    )


def _login_addresses(http: httpx.Client, token: str) -> list[str]:
    response = http.get(
        "/api/admin/audit",
        params={"action": "auth.login_succeeded", "page_size": 100},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return [entry["ip"] for entry in response.json()["items"]]


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tmp_path_factory.mktemp("no-proxy"))


@pytest.fixture(scope="module")
def proxied_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tmp_path_factory.mktemp("proxy"), LORAFORGE_TRUSTED_PROXIES="127.0.0.1")


def test_without_trusted_proxies_a_forwarded_address_is_ignored(plain_server):
    with httpx.Client(base_url=plain_server, timeout=30) as http:
        admin = _login(http, ADMIN_USERNAME, ADMIN_PASSWORD, forwarded_for="203.0.113.50")
        assert admin.status_code == 200, admin.text
        assert _login_addresses(http, admin.json()["access_token"]) == ["127.0.0.1"]

        # Spraying with a new forged address per guess still counts against this one address (limit 6).
        answers = [
            _login(http, f"ghost{index}", "wrong-password", forwarded_for=f"198.51.100.{index}").status_code
            for index in range(7)
        ]
        assert answers == [401] * 6 + [429]


def test_a_trusted_proxy_names_the_client(proxied_server):
    with httpx.Client(base_url=proxied_server, timeout=30) as http:
        # The right-most address that is not a trusted proxy is the client; what it claims before is not.
        admin = _login(http, ADMIN_USERNAME, ADMIN_PASSWORD, forwarded_for="198.51.100.7, 203.0.113.9")
        assert admin.status_code == 200, admin.text
        assert _login_addresses(http, admin.json()["access_token"]) == ["203.0.113.9"]


def _recorded_ip(api: Api, client: TestClient, **headers: Any) -> str:
    api.register("alice")
    response = client.post(
        "/api/auth/login", json={"username_or_email": "alice", "password": DEFAULT_PASSWORD}, headers=headers
    )
    assert response.status_code == 200, response.text
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        from sqlalchemy import select

        from loraforge.db.models import LoginAttempt

        return str(session.scalars(select(LoginAttempt.ip).where(LoginAttempt.success.is_(True))).one())


def test_the_client_address_dependency_applies_the_same_rule(api, client, settings):
    # Whatever server runs the app, the address comes from the header only when the peer is trusted.
    assert _recorded_ip(api, client, **{"X-Forwarded-For": "203.0.113.50"}) == "testclient"


def test_the_client_address_dependency_believes_a_trusted_peer(api, client, settings):
    settings.trusted_proxies = "testclient, 10.0.0.0/8"
    forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.50, 10.1.2.3"}
    assert _recorded_ip(api, client, **forwarded) == "203.0.113.50"
