"""The outbound policy over the API: provider and webhook URLs cannot make the server reach what only
it can reach — loopback in any spelling, private and link-local networks, the server's own API — when
they are saved, nor when a URL saved earlier is used; allow-listed destinations work; and what comes
back never carries an upstream's body or tells port states apart.

The internal target is a real HTTP server on 127.0.0.1 that records every request: wherever a URL is
refused, it must have received nothing.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from api_helpers import Account, Api, assert_error
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openai_live import ThreadServer, free_port, wait_until

from loraforge.app import create_app
from loraforge.db.base import utcnow
from loraforge.db.models import Notification, Provider, User
from loraforge.settings import Settings

SECRET = "INTERNAL-SECRET-BODY"
KEY = "sk-provider-key-1234"


class Internal:
    """An 'internal service' on loopback: `/v1/...` speaks OpenAI, anything else answers 500 + SECRET."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        internal = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                internal.requests.append((self.command, self.path, dict(self.headers)))
                path = self.path.split("?", 1)[0]
                if path == "/v1/models":
                    status, body = 200, {"object": "list", "data": [{"id": "internal-model"}]}
                elif path == "/v1/chat/completions":
                    message = {"role": "assistant", "content": "hello"}
                    status, body = (
                        200,
                        {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]},
                    )
                else:
                    status, body = 500, {"error": {"message": SECRET}}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Internal:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class RawPort:
    """A loopback TCP port that does one fixed thing to every connection: `garbage` (answers bytes that
    are not HTTP, like Redis or PostgreSQL would) or `close` (accepts, then hangs up)."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                if self.behaviour == "garbage":
                    conn.sendall(b"-ERR unknown command\r\n\x00\x01\x02")

    def __enter__(self) -> RawPort:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def internal() -> Iterator[Internal]:
    with Internal() as server:
        yield server


def _internal_urls(port: int) -> list[str]:
    """Loopback and other internal destinations, in the spellings that used to pass."""
    return [
        f"http://127.0.0.1:{port}/v1",
        f"http://0x7f000001:{port}/v1",
        f"http://2130706433:{port}/v1",
        f"http://127.1:{port}/v1",
        f"http://017700000001:{port}/v1",
        f"http://[::1]:{port}/v1",
        f"http://[::ffff:127.0.0.1]:{port}/v1",
        f"http://localhost:{port}/v1",
        f"http://0.0.0.0:{port}/v1",
        "http://169.254.169.254/latest",
        "http://10.0.0.1/v1",
        "http://192.168.1.1/v1",
        "http://100.64.0.1/v1",
        "http://224.0.0.1/v1",
        "http://[fe80::1]/v1",
        "http://[fc00::1]/v1",
    ]


def _provider(
    client: TestClient | httpx.Client, account: Account, name: str, base_url: str
) -> httpx.Response:
    body = {"name": name, "base_url": base_url, "api_key": KEY}
    return client.post("/api/providers", json=body, headers=account.headers)


def _saved_earlier(app: FastAPI, owner: Account, name: str, base_url: str) -> int:
    """A provider row as one saved before the policy existed (straight into the database)."""
    with app.state.db.session() as session:
        provider = Provider(owner_id=owner.id, name=name, base_url=base_url, enabled=True, models=[])
        session.add(provider)
        session.commit()
        return int(provider.id)


def _chat(client: TestClient, account: Account, model: str, *, stream: bool = False) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return client.post("/v1/chat/completions", json=body, headers=account.headers)


# ---- providers ----------------------------------------------------------------------------------------


def test_provider_urls_to_internal_addresses_are_refused_when_saved(
    client: TestClient, api: Api, internal: Internal
) -> None:
    alice = api.account("alice")
    for url in _internal_urls(internal.port):
        error = assert_error(
            _provider(client, alice, "p", url), 422, "destination_not_allowed", "body.base_url"
        )
        assert "LORAFORGE_OUTBOUND_ALLOW" in error["message"], url
    # A change to an internal URL is refused like a new one.
    created = _provider(client, alice, "public", "https://api.example.com/v1")
    assert created.status_code == 201, created.text
    patched = client.patch(
        f"/api/providers/{created.json()['id']}",
        json={"base_url": f"http://2130706433:{internal.port}/v1"},
        headers=alice.headers,
    )
    assert_error(patched, 422, "destination_not_allowed", "body.base_url")
    assert internal.requests == []


@pytest.mark.parametrize(
    "suffix", ["#", "?", "?x=1", "#/x", "/?#", "/err500#", "/err500?"], ids=lambda suffix: repr(suffix)
)
def test_a_query_or_fragment_cannot_cut_the_path(client: TestClient, api: Api, suffix: str) -> None:
    alice = api.account("alice")
    for base in ("https://api.example.com/v1", "http://127.0.0.1:18080"):
        assert_error(_provider(client, alice, "p", base + suffix), 422, field="body.base_url")


def test_provider_urls_saved_earlier_are_refused_when_used(
    client: TestClient, api: Api, app: FastAPI, internal: Internal
) -> None:
    alice = api.account("alice")
    for name, url in [
        ("plain", f"http://127.0.0.1:{internal.port}/v1"),
        ("spelled", f"http://0x7f000001:{internal.port}/v1"),
        ("cut", f"http://127.0.0.1:{internal.port}/err500#"),
    ]:
        pid = _saved_earlier(app, alice, name, url)
        refreshed = client.post(f"/api/providers/{pid}/refresh-models", headers=alice.headers)
        error = assert_error(refreshed, 422, "destination_not_allowed", "body.base_url")
        assert SECRET not in refreshed.text and "internal-model" not in refreshed.text
        for stream in (False, True):
            answer = _chat(client, alice, f"{name}/internal-model", stream=stream)
            assert answer.status_code == 502, answer.text
            assert answer.json()["error"]["code"] == "destination_not_allowed"
            assert SECRET not in answer.text
        assert error["message"]
    assert internal.requests == []


def test_provider_errors_never_echo_the_upstream_or_tell_port_states_apart(
    settings: Settings, api_for: Any, internal: Internal
) -> None:
    # The operator allowed loopback (a local model server): a user still learns only the status.
    client, api = api_for(settings.model_copy(update={"outbound_allow": "127.0.0.0/8"}))
    alice = api.account("alice")
    created = _provider(client, alice, "r0", f"http://127.0.0.1:{internal.port}/err500")
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    error = assert_error(client.post(f"/api/providers/{pid}/refresh-models", headers=alice.headers), 502)
    assert error["code"] == "provider_unreachable" and "500" in error["message"]
    assert SECRET not in json.dumps(error)
    chat = _chat(client, alice, "r0/anything")
    assert chat.status_code == 502 and "500" in chat.text and SECRET not in chat.text
    assert internal.requests and internal.requests[0][2].get("Authorization") == f"Bearer {KEY}"

    # A closed port, a service that is not HTTP, one that hangs up: the same words for each.
    with RawPort("garbage") as garbage, RawPort("close") as hangup:
        messages = set()
        for port in (free_port(), garbage.port, hangup.port):
            url = f"http://127.0.0.1:{port}/v1"
            assert client.patch(
                f"/api/providers/{pid}", json={"base_url": url}, headers=alice.headers
            ).is_success
            refreshed = client.post(f"/api/providers/{pid}/refresh-models", headers=alice.headers)
            messages.add(assert_error(refreshed, 502, "provider_unreachable")["message"])
            chat = _chat(client, alice, "r0/anything")
            assert chat.status_code == 502
            messages.add(chat.json()["error"]["message"])
    assert messages == {"provider 'r0' is unreachable"}


def test_allow_listing_a_destination_makes_it_work(
    settings: Settings, api_for: Any, internal: Internal
) -> None:
    client, api = api_for(settings.model_copy(update={"outbound_allow": f"127.0.0.1:{internal.port}"}))
    alice = api.account("alice")
    for name, url in [
        ("exact", f"http://127.0.0.1:{internal.port}/v1"),
        ("short", f"http://127.1:{internal.port}/v1"),
    ]:
        created = _provider(client, alice, name, url)
        assert created.status_code == 201, created.text
        refreshed = client.post(
            f"/api/providers/{created.json()['id']}/refresh-models", headers=alice.headers
        )
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["models"] == ["internal-model"]
        answer = _chat(client, alice, f"{name}/internal-model")
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"] == "hello"
    assert ("GET", "/v1/models") in [(method, path) for method, path, _ in internal.requests]
    # The entry names one port: the next one is still internal, and `#` is still refused.
    other = _provider(client, alice, "other", f"http://127.0.0.1:{internal.port + 1}/v1")
    assert_error(other, 422, "destination_not_allowed", "body.base_url")
    assert_error(_provider(client, alice, "cut", f"http://127.0.0.1:{internal.port}/err500#"), 422)


class _Recorder:
    """An ASGI wrapper that records every HTTP path the app is asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


def test_the_servers_own_api_is_refused_even_under_a_broad_allow_entry(
    settings: Settings, internal: Internal
) -> None:
    recorder = _Recorder()
    live = ThreadServer(recorder)  # its port is taken now: the settings name it as the server's own
    # The operator allows all of loopback for local model servers; the server listens there too.
    own = settings.model_copy(
        update={"host": "127.0.0.1", "port": live.port, "outbound_allow": "127.0.0.0/8"}
    )
    recorder.app = create_app(own)
    with live, httpx.Client(base_url=live.url, timeout=60) as client:
        api = Api(client)  # type: ignore[arg-type]  (an httpx.Client speaks the TestClient's interface)
        alice = api.account("alice")
        for host in ("127.0.0.1", "localhost", "127.1", "2130706433", "0.0.0.0"):  # noqa: S104
            url = f"http://{host}:{live.port}/api/admin"
            response = _provider(client, alice, "own", url)
            error = assert_error(response, 422, "destination_not_allowed", "body.base_url")
            assert "own address" in error["message"], url
        pid = _saved_earlier(recorder.app, alice, "own", f"http://127.0.0.1:{live.port}/api/admin")
        refreshed = client.post(f"/api/providers/{pid}/refresh-models", headers=alice.headers)
        assert_error(refreshed, 422, "destination_not_allowed", "body.base_url")
        # Another port under the same entry is allowed.
        assert _provider(client, alice, "local", f"http://127.0.0.1:{internal.port}/v1").status_code == 201
    assert not [path for path in recorder.paths if path.startswith("/api/admin")]


# ---- webhooks -----------------------------------------------------------------------------------------


def test_webhook_urls_to_internal_addresses_are_refused_when_saved(
    client: TestClient, api: Api, internal: Internal
) -> None:
    alice = api.account("alice")
    for url in _internal_urls(internal.port):
        response = client.put("/api/notifications/settings", json={"webhook_url": url}, headers=alice.headers)
        assert_error(response, 422, "destination_not_allowed", "body.webhook_url")
    assert client.get("/api/notifications/settings", headers=alice.headers).json() == {"webhook_url": None}
    assert internal.requests == []


def test_webhook_test_and_delivery_refuse_internal_destinations(
    settings: Settings, api_for: Any, internal: Internal
) -> None:
    client, api = api_for(settings.model_copy(update={"webhook_max_attempts": 1}))
    alice = api.account("alice")
    for url in _internal_urls(internal.port)[:9]:
        result = client.post(
            "/api/notifications/test-webhook", json={"webhook_url": url}, headers=alice.headers
        )
        assert result.json() == {
            "delivered": False,
            "status_code": None,
            "error": "destination not allowed",
        }, url
    # A URL saved before the policy: the test and the background delivery both refuse it.
    app: FastAPI = client.app  # type: ignore[assignment]
    with app.state.db.session() as session:
        user = session.get(User, alice.id)
        assert user is not None
        user.webhook_url = f"http://127.1:{internal.port}/hook?token=t"
        now = utcnow()
        note = Notification(
            user_id=alice.id, kind="job.failed", title="t", body="b", data={}, created_at=now,
            webhook_status="pending", webhook_attempts=0, webhook_next_at=now,
        )  # fmt: skip
        session.add(note)
        session.commit()
        note_id = note.id
    result = client.post("/api/notifications/test-webhook", json={}, headers=alice.headers).json()
    assert result["error"] == "destination not allowed"

    def status() -> str | None:
        with app.state.db.session() as session:
            found = session.get(Notification, note_id)
            return found.webhook_status if found is not None else None

    assert wait_until(lambda: status() == "failed", timeout=30), status()
    assert internal.requests == []


def test_webhook_failures_read_the_same_whatever_the_port_state(settings: Settings, api_for: Any) -> None:
    # Even with loopback allowed by the operator, a user cannot tell a closed port from a non-HTTP service.
    client, api = api_for(settings.model_copy(update={"outbound_allow": "127.0.0.1"}))
    alice = api.account("alice")
    with RawPort("garbage") as garbage, RawPort("close") as hangup:
        results = [
            client.post(
                "/api/notifications/test-webhook",
                json={"webhook_url": f"http://127.0.0.1:{port}/hook"},
                headers=alice.headers,
            ).json()
            for port in (free_port(), garbage.port, hangup.port)
        ]
    assert results == [{"delivered": False, "status_code": None, "error": "delivery failed"}] * 3


def test_an_allow_listed_webhook_is_saved_and_tested(
    settings: Settings, api_for: Any, internal: Internal
) -> None:
    client, api = api_for(settings.model_copy(update={"outbound_allow": f"127.0.0.1:{internal.port}"}))
    alice = api.account("alice")
    url = f"http://127.0.0.1:{internal.port}/v1/models?token=t"
    saved = client.put("/api/notifications/settings", json={"webhook_url": url}, headers=alice.headers)
    assert saved.status_code == 200, saved.text
    result = client.post("/api/notifications/test-webhook", json={}, headers=alice.headers).json()
    assert result == {"delivered": True, "status_code": 200, "error": None}
    assert [(method, path) for method, path, _ in internal.requests] == [("POST", "/v1/models?token=t")]


@pytest.fixture
def api_for() -> Iterator[Any]:
    """Start the app with other settings: `client, api = api_for(settings)` (stopped at the end)."""
    clients: list[TestClient] = []

    def start(settings: Settings) -> tuple[TestClient, Api]:
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client, Api(client)

    yield start
    for client in clients:
        client.__exit__(None, None, None)
