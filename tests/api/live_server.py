"""A real uvicorn server on 127.0.0.1 for clients that need real HTTP (the official `openai` package).

The server runs the app (lifespan included: scheduler, inference manager) in a thread of the test
process on a socket bound here to a free port, and is stopped by the test that started it. Tests that
use it talk to no other app instance: two schedulers on one database would fight over the jobs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from api_helpers import ADMIN_PASSWORD, ADMIN_USERNAME, DEFAULT_PASSWORD, Account
from openai import OpenAI

from loraforge.app import create_app
from loraforge.settings import Settings


@dataclass
class LiveServer:
    base_url: str  # http://127.0.0.1:<port>
    http: httpx.Client  # for /api calls

    def account(self, username: str, *, role: str | None = None) -> Account:
        """Register and log in a user (optionally given a role by the admin)."""
        body = {"username": username, "email": f"{username}@example.com", "password": DEFAULT_PASSWORD}
        response = self.http.post("/api/auth/register", json=body)
        assert response.status_code == 201, response.text
        user = response.json()
        if role is not None and role != user["role"]:
            admin = self.login(ADMIN_USERNAME, ADMIN_PASSWORD)
            response = self.http.patch(
                f"/api/admin/users/{user['id']}", json={"role": role}, headers=admin.headers
            )
            assert response.status_code == 200, response.text
        return self.login(username, DEFAULT_PASSWORD)

    def login(self, username: str, password: str) -> Account:
        response = self.http.post(
            "/api/auth/login", json={"username_or_email": username, "password": password}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        user = body["user"]
        return Account(user["id"], user["username"], user["email"], password, body["access_token"])

    def api_key(self, account: Account) -> str:
        response = self.http.post("/api/auth/api-keys", json={"name": "openai"}, headers=account.headers)
        assert response.status_code == 201, response.text
        key: str = response.json()["key"]
        return key

    def openai(self, account: Account, **options: Any) -> OpenAI:
        """The official client with a personal API key of `account` (max_retries=0: errors surface)."""
        return OpenAI(
            base_url=f"{self.base_url}/v1",
            api_key=self.api_key(account),
            max_retries=0,
            timeout=60,
            **options,
        )


@contextmanager
def live_server(settings: Settings, *, start_timeout: float = 30.0) -> Iterator[LiveServer]:
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    base_url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            yield LiveServer(base_url=base_url, http=http)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
