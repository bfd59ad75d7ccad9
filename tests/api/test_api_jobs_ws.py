"""WS /ws/jobs/{id}: authentication, access, and a real engine's events streamed live without gaps.

Starlette's TestClient runs the app's lifespan, so the scheduler (and its event pump) runs for real;
jobs run the tiny demo model in an engine subprocess.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Api
from fastapi.testclient import TestClient
from job_helpers import FINAL, create_job, sample_dataset, tiny_spec, wait_for
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from loraforge.app import create_app
from loraforge.db.models import Job, JobEvent
from loraforge.services.platform.event_hub import job_channel
from loraforge.settings import Settings

_MAX_MESSAGES = 5000  # a runaway stream fails the test instead of looping


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Short heartbeats: a test that waits for "nothing more" reads a heartbeat instead of blocking.
    return settings.model_copy(update={"ws_heartbeat_seconds": 0.5})


def _bearer(token: str) -> list[str]:
    return ["loraforge.bearer", token]


def _connect(client: TestClient, job_id: int, token: str | None, query: str = "") -> Any:
    subprotocols = _bearer(token) if token is not None else None
    return client.websocket_connect(f"/ws/jobs/{job_id}{query}", subprotocols=subprotocols)


def _close_code(client: TestClient, url: str, **kwargs: Any) -> int:
    """Connect and read once; the server accepts, then closes with a 44xx code."""
    with pytest.raises(WebSocketDisconnect) as caught, client.websocket_connect(url, **kwargs) as ws:
        ws.receive_json()
    return caught.value.code


def _until(ws: WebSocketTestSession, done: Any) -> list[dict[str, Any]]:
    """Messages up to and including the first for which `done(message)` is true (heartbeats dropped)."""
    received: list[dict[str, Any]] = []
    for _ in range(_MAX_MESSAGES):
        message = ws.receive_json()
        if message["type"] != "heartbeat":
            received.append(message)
        if done(message):
            return received
    raise AssertionError(f"no end after {_MAX_MESSAGES} messages: {received[-5:]}")


def _is_final_job(message: dict[str, Any]) -> bool:
    return message["type"] == "job" and message["job"]["status"] in FINAL


def _rest_events(api: Api, account: Any, job_id: int, after: int = 0) -> list[dict[str, Any]]:
    response = api.client.get(
        f"/api/jobs/{job_id}/events", params={"after": after, "limit": 1000}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _draft(api: Api, account: Any) -> dict[str, Any]:
    dataset = sample_dataset(api.client, account)
    return create_job(api.client, account, tiny_spec(dataset["id"]), start=False)


# ---- authentication and access (no engine) ------------------------------------------------------------


def test_missing_invalid_or_query_string_token_closes_4401(api: Api, client: TestClient):
    alice = api.account("alice")
    job = _draft(api, alice)
    url = f"/ws/jobs/{job['id']}"
    assert _close_code(client, url) == 4401
    assert _close_code(client, url, subprotocols=_bearer("not-a-token")) == 4401
    assert _close_code(client, url, headers={"Authorization": "Bearer lf_wrong"}) == 4401
    # A token in the URL would end up in access logs: it is not a credential here.
    assert _close_code(client, f"{url}?token={alice.token}") == 4401
    assert _close_code(client, f"{url}?access_token={alice.token}") == 4401


def test_another_researcher_gets_4404_staff_and_owner_get_the_snapshot(api: Api, client: TestClient):
    alice = api.account("alice")
    bob = api.account("bob")
    operator = api.account("olga", role="operator")
    job = _draft(api, alice)
    assert _close_code(client, f"/ws/jobs/{job['id']}", subprotocols=_bearer(bob.token)) == 4404
    assert _close_code(client, "/ws/jobs/999999", subprotocols=_bearer(alice.token)) == 4404
    assert _close_code(client, "/ws/jobs/abc", subprotocols=_bearer(alice.token)) == 4404
    for account in (alice, operator, api.admin()):
        with _connect(client, job["id"], account.token) as ws:
            assert ws.accepted_subprotocol == "loraforge.bearer"  # the token is never echoed
            snapshot = ws.receive_json()
        assert snapshot["type"] == "snapshot"
        assert snapshot["job"]["id"] == job["id"] and snapshot["job"]["status"] == "draft"
        assert snapshot["last_seq"] == 0 and snapshot["resources"] is None
        assert "progress" in snapshot["job"]


def test_bad_after_closes_4400(api: Api, client: TestClient):
    alice = api.account("alice")
    job = _draft(api, alice)
    for bad in ("-1", "x", "1.5"):
        url = f"/ws/jobs/{job['id']}?after={bad}"
        assert _close_code(client, url, subprotocols=_bearer(alice.token)) == 4400


def test_api_key_in_header_or_subprotocol_works(api: Api, client: TestClient):
    alice = api.account("alice")
    job = _draft(api, alice)
    created = client.post("/api/auth/api-keys", json={"name": "ws"}, headers=alice.headers)
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    with client.websocket_connect(f"/ws/jobs/{job['id']}", headers={"Authorization": f"Bearer {key}"}) as ws:
        assert ws.accepted_subprotocol is None
        assert ws.receive_json()["type"] == "snapshot"
    with _connect(client, job["id"], key) as ws:
        assert ws.receive_json()["type"] == "snapshot"
    # A revoked key stops working for new connections.
    assert (
        client.delete(f"/api/auth/api-keys/{created.json()['id']}", headers=alice.headers).status_code == 204
    )
    assert _close_code(client, f"/ws/jobs/{job['id']}", subprotocols=_bearer(key)) == 4401


def test_idle_stream_sends_heartbeats_and_ignores_client_pings(api: Api, client: TestClient):
    alice = api.account("alice")
    job = _draft(api, alice)
    with _connect(client, job["id"], alice.token) as ws:
        assert ws.receive_json()["type"] == "snapshot"
        ws.send_json({"type": "ping"})
        ws.send_text("not json at all")
        heartbeat = ws.receive_json()
        assert (
            heartbeat["type"] == "heartbeat"
            and datetime.fromisoformat(heartbeat["ts"]).utcoffset() is not None
        )
        assert ws.receive_json()["type"] == "heartbeat"  # still alive after the client's noise


def test_request_changes_show_up_as_job_messages(settings: Settings):
    # No scheduler: the row changes only by requests, which the stream sees by polling the row.
    app = create_app(settings.model_copy(update={"scheduler_enabled": False}))
    with TestClient(app) as client:
        api = Api(client)
        alice = api.account("alice")
        job = _draft(api, alice)
        with _connect(client, job["id"], alice.token) as ws:
            assert ws.receive_json()["job"]["status"] == "draft"
            assert client.post(f"/api/jobs/{job['id']}/start", headers=alice.headers).status_code == 200
            queued = _until(ws, lambda m: m["type"] == "job")[-1]["job"]
            assert client.post(f"/api/jobs/{job['id']}/cancel", headers=alice.headers).status_code == 200
            cancelled = _until(ws, lambda m: m["type"] == "job")[-1]["job"]
    assert queued["status"] == "queued" and queued["queued_at"]
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]


def _store_events(app: Any, job_id: int, seqs: range) -> list[dict[str, Any]]:
    """Write events to the database as another server's scheduler would (no hub message here)."""
    stored = []
    with app.state.db.session() as session:
        job = session.get(Job, job_id)
        for seq in seqs:
            data = {"step": seq, "loss": 1.0 / seq}
            session.add(JobEvent(job_id=job_id, seq=seq, type="metric", ts=1000.0 + seq, data=data))
            # Stored as Unix seconds, sent like every API time: ISO 8601 with the UTC offset.
            shown = datetime.fromtimestamp(1000.0 + seq, UTC).isoformat().replace("+00:00", "Z")
            stored.append({"seq": seq, "type": "metric", "ts": shown, **data})
        job.last_event_seq = seqs[-1]
        session.commit()
    return stored


def test_events_stored_by_another_server_or_missed_by_the_hub_are_read_from_the_database(settings: Settings):
    app = create_app(settings.model_copy(update={"scheduler_enabled": False}))
    with TestClient(app) as client:
        api = Api(client)
        alice = api.account("alice")
        job = _draft(api, alice)
        with _connect(client, job["id"], alice.token) as ws:
            assert ws.receive_json()["type"] == "snapshot"
            # Another process pumped these: the hub of this server never hears of them.
            first = _store_events(app, job["id"], range(1, 4))
            assert _until(ws, lambda m: m.get("seq") == 3) == first
            # The hub announces seq 6 only (4 and 5 were dropped): the gap is filled from the database.
            second = _store_events(app, job["id"], range(4, 7))
            app.state.hub.publish(job_channel(job["id"]), second[-1])
            assert _until(ws, lambda m: m.get("seq") == 6) == second
            # A duplicate announcement of an event already sent is not sent again.
            app.state.hub.publish(job_channel(job["id"]), second[0])
            assert ws.receive_json()["type"] == "heartbeat"


# ---- a real engine ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.engine_heavy
def test_stream_from_queued_to_succeeded_then_reconnect_after_mid_seq(
    api: Api, client: TestClient, demo_model: Path
):
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)
    spec = tiny_spec(dataset["id"], max_steps=12, logging_steps=1, resource_interval_seconds=0.5)
    job = create_job(api.client, alice, spec, start=True)

    with _connect(client, job["id"], alice.token) as ws:
        messages = _until(ws, _is_final_job)
    snapshot, rest = messages[0], messages[1:]
    assert snapshot["type"] == "snapshot" and snapshot["job"]["status"] in {"queued", "starting", "running"}
    events = [m for m in rest if m["type"] not in {"job", "snapshot"}]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))  # in order, no gaps, no duplicates
    # Exactly what was stored, in the same shape as GET /events.
    assert events == _rest_events(api, alice, job["id"])

    steps = [e["step"] for e in events if e["type"] == "metric"]
    assert steps == list(range(1, 13))
    assert all(0 < e["progress"] <= 1 for e in events if e["type"] == "metric")
    # Per-step progress (at most one a second) reaches the socket too; the run's last step always does.
    progress = [e for e in events if e["type"] == "progress"]
    assert progress and progress[-1]["step"] == 12 and progress[-1]["eta_s"] == 0
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert "training" in statuses and statuses[-1] == "succeeded"
    resources = [e for e in events if e["type"] == "resource"]
    assert resources and all(r["rss_mb"] > 0 and "cpu_pct" in r for r in resources)

    job_updates = [m["job"] for m in rest if m["type"] == "job"]
    assert [u["status"] for u in job_updates][-1] == "succeeded"
    assert "running" in [u["status"] for u in job_updates]
    assert job_updates[-1]["progress"] == 1.0
    # The final job message comes after the final status event.
    assert rest.index(next(m for m in rest if m.get("status") == "succeeded")) < len(rest) - 1

    # Reconnect from the middle: exactly the rest, then only heartbeats.
    mid = seqs[len(seqs) // 2]
    with _connect(client, job["id"], alice.token, query=f"?after={mid}") as ws:
        snap = ws.receive_json()
        assert snap["type"] == "snapshot" and snap["last_seq"] == seqs[-1]
        assert snap["job"]["status"] == "succeeded" and snap["job"]["progress"] == 1.0
        assert snap["resources"]["type"] == "resource" and snap["resources"]["seq"] <= seqs[-1]
        tail = _until(ws, lambda m: m.get("seq") == seqs[-1])
        assert ws.receive_json()["type"] == "heartbeat"
    assert tail == events[mid:]


@pytest.mark.slow
@pytest.mark.engine_heavy
def test_owner_stop_through_rest_shows_up_on_the_stream(api: Api, client: TestClient, demo_model: Path):
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)
    job = create_job(api.client, alice, tiny_spec(dataset["id"], max_steps=100_000), start=True)
    with _connect(client, job["id"], alice.token) as ws:
        _until(ws, lambda m: m["type"] == "metric")  # training for real
        stopped = client.post(f"/api/jobs/{job['id']}/stop", headers=alice.headers)
        assert stopped.status_code == 200, stopped.text
        messages = _until(ws, _is_final_job)
    statuses = [m["job"]["status"] for m in messages if m["type"] == "job"]
    # "stopping" (the request's change) lasts only until the next step boundary on the tiny model,
    # which can be shorter than one row poll; the final "stopped" always arrives.
    assert statuses[-1] == "stopped" and set(statuses) <= {"running", "stopping", "stopped"}
    seqs = [m["seq"] for m in messages if "seq" in m]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    # the engine's own word for the end of a stop stays `cancelled`; the job is `stopped`
    assert [m.get("status") for m in messages if m["type"] == "status"][-1] == "cancelled"
    wait_for(client, alice, job["id"], {"stopped"})
