"""Notifications: created by job status changes, listed and marked read over REST, pushed on the
per-user WebSocket, and POSTed to a webhook (a real local HTTP server) with retries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from fastapi import FastAPI
from fastapi.testclient import TestClient
from job_helpers import create_job, sample_dataset, tiny_spec, wait_for

from loraforge.db.models import Job, JobEvent, JobStatus, Notification
from loraforge.services.jobs import lifecycle
from loraforge.services.jobs.states import transition
from loraforge.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # No scheduler: these tests move jobs through the real state machine themselves. Short webhook
    # backoff and heartbeat so retries and idle WebSockets do not make the tests slow.
    return settings.model_copy(
        update={
            "scheduler_enabled": False,
            "webhook_backoff_seconds": 0.2,
            "webhook_max_attempts": 3,
            "webhook_timeout_seconds": 2.0,
            "ws_heartbeat_seconds": 0.5,
            # The webhook receivers are real servers on loopback: the operator allows that address.
            "outbound_allow": "127.0.0.1",
        }
    )


def _move(app: FastAPI, job_id: int, *targets: JobStatus, error: dict[str, Any] | None = None) -> None:
    """Drive a job through `targets` with the one transition function (as the scheduler would)."""
    with app.state.db.session() as session:
        for target in targets:
            job = session.get(Job, job_id)
            assert job is not None
            changes = {"error": error} if error is not None and target is JobStatus.failed else {}
            transition(session, job, target, **changes)
            session.commit()


def _job(client: TestClient, account: Account, name: str = "my job") -> dict[str, Any]:
    dataset = sample_dataset(client, account)
    return create_job(client, account, tiny_spec(dataset["id"]), name=name)


def _notifications(client: TestClient, account: Account, **params: Any) -> dict[str, Any]:
    response = client.get("/api/notifications", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _wait(predicate: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"still waiting for {what}")


def test_status_changes_create_notifications_for_the_owner(
    api: Api, client: TestClient, app: FastAPI
) -> None:
    alice = api.account("alice")
    job = _job(client, alice)
    _move(app, job["id"], JobStatus.queued, JobStatus.starting)
    assert _notifications(client, alice)["total"] == 0  # queued / starting are not news
    _move(app, job["id"], JobStatus.running)
    _move(
        app, job["id"], JobStatus.failed,
        error={"code": "oom", "message": "CUDA out of memory", "suggestion": "lower the batch size"},
    )  # fmt: skip
    body = _notifications(client, alice)
    assert [n["kind"] for n in body["items"]] == ["job.failed", "job.started"]  # newest first
    failed = body["items"][0]
    assert failed["job_id"] == job["id"] and "my job" in failed["title"]
    assert "CUDA out of memory" in failed["body"] and "lower the batch size" in failed["body"]
    assert failed["data"]["error_code"] == "oom" and failed["read_at"] is None
    assert body["unread"] == 2

    # resume → started again; cancel → cancelled; resume, a graceful stop → stopped; a second job succeeds
    _move(app, job["id"], JobStatus.queued, JobStatus.starting, JobStatus.running, JobStatus.cancelled)
    _move(app, job["id"], JobStatus.queued, JobStatus.starting, JobStatus.running, JobStatus.stopping)
    settings: Settings = app.state.settings
    checkpoint = settings.runs_dir / str(job["id"]) / "checkpoints" / "checkpoint-3"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    with app.state.db.session() as session:
        session.add(JobEvent(job_id=job["id"], seq=1, type="metric", ts=1.0, data={"step": 3}))
        row = session.get(Job, job["id"])
        assert row is not None
        lifecycle.finish_stop(session, settings, row)  # what the watcher does when the engine has stopped
        session.commit()
    other = create_job(client, alice, job["spec"], name="second")
    _move(app, other["id"], JobStatus.queued, JobStatus.starting, JobStatus.running, JobStatus.succeeded)
    items = _notifications(client, alice, page_size=100)["items"]
    assert [n["kind"] for n in items] == [
        "job.succeeded",
        "job.started",
        "job.stopped",
        "job.started",
        "job.cancelled",
        "job.started",
        "job.failed",
        "job.started",
    ]
    stopped, cancelled = items[2], items[4]
    # A stop has its own words: where it stopped and what resumes it; a cancel says nothing of resuming.
    assert (
        stopped["title"] == "Job “my job” was stopped" and cancelled["title"] == "Job “my job” was cancelled"
    )
    assert stopped["body"] == "Stopped at step 3; resume it from checkpoint-3."
    assert "resume" not in cancelled["body"] and "checkpoint" not in cancelled["data"]
    assert stopped["data"] == {
        "status": "stopped", "previous": "stopping", "error_code": "stopped", "checkpoint": "checkpoint-3",
    }  # fmt: skip
    # without a webhook URL nothing waits for delivery
    with app.state.db.session() as session:
        assert {n.webhook_status for n in session.query(Notification)} == {None}


def test_list_read_and_isolation(api: Api, client: TestClient, app: FastAPI) -> None:
    alice = api.account("alice")
    bob = api.account("bob")
    admin = api.admin()
    job = _job(client, alice)
    _move(app, job["id"], JobStatus.queued, JobStatus.starting, JobStatus.running, JobStatus.succeeded)
    body = _notifications(client, alice, page_size=1)
    assert body["total"] == 2 and len(body["items"]) == 1 and body["unread"] == 2
    page2 = _notifications(client, alice, page_size=1, page=2)
    assert page2["items"][0]["id"] < body["items"][0]["id"]
    newest = body["items"][0]["id"]

    # nobody else sees or marks them (admins included)
    assert _notifications(client, bob)["total"] == 0
    assert _notifications(client, admin)["total"] == 0
    marked = client.post("/api/notifications/read", json={"ids": [newest]}, headers=bob.headers)
    assert marked.json() == {"marked": 0, "unread": 0}

    marked = client.post("/api/notifications/read", json={"ids": [newest]}, headers=alice.headers).json()
    assert marked == {"marked": 1, "unread": 1}
    unread = _notifications(client, alice, unread_only=True)
    assert unread["total"] == 1 and unread["items"][0]["id"] != newest
    assert client.post("/api/notifications/read", json={"all": True}, headers=alice.headers).json() == {
        "marked": 1, "unread": 0,
    }  # fmt: skip
    assert_error(client.post("/api/notifications/read", json={}, headers=alice.headers), 422)
    assert_error(client.get("/api/notifications"), 401)


def test_webhook_settings_are_validated_and_never_audited_verbatim(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    assert client.get("/api/notifications/settings", headers=alice.headers).json() == {"webhook_url": None}
    for bad in [
        "ftp://example.com/x",
        "not a url",
        "http://",
        "https://user:pw@example.com/h",
        "javascript:alert(1)",
    ]:
        response = client.put("/api/notifications/settings", json={"webhook_url": bad}, headers=alice.headers)
        assert_error(response, 422, field="body.webhook_url")
    url = "https://hooks.example.com/T0/secret-token"
    response = client.put("/api/notifications/settings", json={"webhook_url": url}, headers=alice.headers)
    assert response.status_code == 200 and response.json() == {"webhook_url": url}
    assert client.get("/api/notifications/settings", headers=alice.headers).json() == {"webhook_url": url}
    entries = api.audit(api.admin(), action="notification.settings_changed")
    assert entries and "secret-token" not in json.dumps(entries)
    cleared = client.put("/api/notifications/settings", json={"webhook_url": ""}, headers=alice.headers)
    assert cleared.json() == {"webhook_url": None}


class _Hook:
    """A real HTTP endpoint on 127.0.0.1 answering each POST with the next status from `statuses`."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                hook.received.append(json.loads(self.rfile.read(length)))
                status = hook.statuses.pop(0) if len(hook.statuses) > 1 else hook.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=abc"

    def __enter__(self) -> _Hook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def flaky_hook() -> Iterator[_Hook]:
    with _Hook([500, 200]) as hook:
        yield hook


def _webhook_state(app: FastAPI, notification_id: int) -> tuple[str | None, int]:
    with app.state.db.session() as session:
        n = session.get(Notification, notification_id)
        assert n is not None
        return n.webhook_status, n.webhook_attempts


def test_webhook_is_retried_until_delivered(
    api: Api, client: TestClient, app: FastAPI, flaky_hook: _Hook
) -> None:
    alice = api.account("alice")
    client.put("/api/notifications/settings", json={"webhook_url": flaky_hook.url}, headers=alice.headers)
    job = _job(client, alice, name="hooked")
    _move(app, job["id"], JobStatus.queued, JobStatus.starting, JobStatus.running)
    notification = _notifications(client, alice)["items"][0]

    # the app's background task delivers it: first attempt gets 500, the retry gets 200
    _wait(lambda: _webhook_state(app, notification["id"])[0] == "delivered", "webhook delivery")
    assert _webhook_state(app, notification["id"]) == ("delivered", 2)
    assert len(flaky_hook.received) == 2
    body = flaky_hook.received[-1]
    assert set(body) == {"id", "kind", "title", "body", "job_id", "created_at", "data"}
    assert body["id"] == notification["id"] and body["kind"] == "job.started" and body["job_id"] == job["id"]


def test_webhook_gives_up_after_max_attempts(api: Api, client: TestClient, app: FastAPI) -> None:
    alice = api.account("alice")
    with _Hook([503]) as hook:
        client.put("/api/notifications/settings", json={"webhook_url": hook.url}, headers=alice.headers)
        job = _job(client, alice)
        _move(app, job["id"], JobStatus.queued, JobStatus.starting, JobStatus.running)
        notification = _notifications(client, alice)["items"][0]
        _wait(lambda: _webhook_state(app, notification["id"])[0] == "failed", "webhook to give up")
        assert _webhook_state(app, notification["id"]) == ("failed", 3)
        assert len(hook.received) == 3


def test_test_webhook_endpoint(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    assert_error(client.post("/api/notifications/test-webhook", json={}, headers=alice.headers), 422)
    with _Hook([204]) as hook:
        client.put("/api/notifications/settings", json={"webhook_url": hook.url}, headers=alice.headers)
        result = client.post("/api/notifications/test-webhook", json={}, headers=alice.headers).json()
        assert result == {"delivered": True, "status_code": 204, "error": None}
        assert hook.received[0]["kind"] == "test"
    # the server is gone now: a readable reason, no details of the endpoint's answer or of the failure
    result = client.post(
        "/api/notifications/test-webhook", json={"webhook_url": hook.url}, headers=alice.headers
    )
    assert result.json() == {"delivered": False, "status_code": None, "error": "delivery failed"}
    gopher = client.post(
        "/api/notifications/test-webhook", json={"webhook_url": "gopher://x"}, headers=alice.headers
    )
    assert_error(gopher, 422, field="body.webhook_url")


def _ws(client: TestClient, account: Account, query: str = "") -> Any:
    return client.websocket_connect(
        f"/ws/notifications{query}", subprotocols=["loraforge.bearer", account.token]
    )


def _next_notification(ws: Any) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message["type"] == "notification":
            return message


def test_websocket_pushes_live_and_replays_after_id(api: Api, client: TestClient, app: FastAPI) -> None:
    alice = api.account("alice")
    bob = api.account("bob")
    job = _job(client, alice)
    _move(app, job["id"], JobStatus.queued, JobStatus.starting, JobStatus.running)
    first = _notifications(client, alice)["items"][0]

    with _ws(client, alice) as ws:
        snapshot = ws.receive_json()
        assert snapshot == {"type": "snapshot", "unread": 1, "last_id": first["id"]}
        replayed = ws.receive_json()  # unread ones first
        assert replayed["type"] == "notification" and replayed["id"] == first["id"]
        _move(app, job["id"], JobStatus.succeeded)
        live = _next_notification(ws)
        assert live["kind"] == "job.succeeded" and live["job_id"] == job["id"]
        # idle connections get heartbeats with the unread count
        while (message := ws.receive_json())["type"] != "heartbeat":
            pass
        assert message["unread"] == 2

    # reconnect after the first id: exactly the newer one, read or not
    client.post("/api/notifications/read", json={"all": True}, headers=alice.headers)
    with _ws(client, alice, f"?after={first['id']}") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        assert _next_notification(ws)["id"] == live["id"]

    # bob's channel carries none of alice's
    with _ws(client, bob) as ws:
        assert ws.receive_json() == {"type": "snapshot", "unread": 0, "last_id": 0}
        other = create_job(client, alice, job["spec"], name="again")
        _move(app, other["id"], JobStatus.queued, JobStatus.starting, JobStatus.running)
        assert ws.receive_json()["type"] == "heartbeat"


def test_websocket_refuses_bad_credentials_and_parameters(api: Api, client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    alice = api.account("alice")
    with client.websocket_connect("/ws/notifications") as ws, pytest.raises(WebSocketDisconnect) as exc:
        ws.receive_json()
    assert exc.value.code == 4401
    with (
        client.websocket_connect("/ws/notifications", subprotocols=["loraforge.bearer", "nope"]) as ws,
        pytest.raises(WebSocketDisconnect) as exc,
    ):
        ws.receive_json()
    assert exc.value.code == 4401
    with _ws(client, alice, "?after=-3") as ws, pytest.raises(WebSocketDisconnect) as exc:
        ws.receive_json()
    assert exc.value.code == 4400


# ---- a real engine run ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.engine_heavy
def test_a_real_job_notifies_started_and_succeeded(settings: Settings, demo_model: Any) -> None:
    from loraforge.app import create_app

    real = create_app(settings.model_copy(update={"scheduler_enabled": True}))
    with TestClient(real) as client:
        alice = Api(client).account("alice")
        dataset = sample_dataset(client, alice)
        with client.websocket_connect(
            "/ws/notifications", subprotocols=["loraforge.bearer", alice.token]
        ) as ws:
            assert ws.receive_json()["type"] == "snapshot"
            job = create_job(client, alice, tiny_spec(dataset["id"]), start=True, name="real")
            wait_for(client, alice, job["id"], {"succeeded"})
            kinds = [_next_notification(ws)["kind"] for _ in range(2)]
        assert kinds == ["job.started", "job.succeeded"]
