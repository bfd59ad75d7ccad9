"""Nodes, the operators' summary, /metrics node gauges and `/ws/operations`, against the live app.

The local node is the real host: the app's operations loop samples it (psutil, the data directory's
disk, NVML when there is one) and the API serves what it stored. Nothing is faked; jobs are queued
through the API with the scheduler off, and the two that "run" on the node are put there by a direct
row update (placement is the scheduler's, tested with it).
"""

from __future__ import annotations

import socket
import time
from typing import Any

import psutil
import pytest
from api_helpers import Account, Api, assert_error
from fastapi import FastAPI
from fastapi.testclient import TestClient
from job_helpers import create_job, sample_dataset, tiny_spec
from sqlalchemy import update
from starlette.websockets import WebSocketDisconnect

from loraforge.db.models import Job, JobStatus
from loraforge.db.session import Database
from loraforge.executors import node_sampler
from loraforge.services.jobs.states import transition
from loraforge.settings import Settings

HUB_MODEL = "Qwen/Qwen2.5-0.5B"  # never downloaded: nothing runs here


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"scheduler_enabled": False, "telemetry_interval_seconds": 0.5, "ws_heartbeat_seconds": 0.3}
    )


def wait_for_readings(client: TestClient, account: Account, count: int = 1) -> dict[str, Any]:
    """The local node once the loop has stored `count` readings of it (polls the API)."""
    deadline = time.monotonic() + 30
    node: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        items = client.get("/api/nodes", headers=account.headers).json()["items"]
        node = next((n for n in items if n["kind"] == "local"), None)
        if node is not None and node["latest"] is not None:
            if count <= 1:
                return node
            detail = client.get(f"/api/nodes/{node['id']}", headers=account.headers).json()
            if len(detail["history"]) >= count:
                return node
        time.sleep(0.1)
    raise AssertionError(f"the local node has no {count} readings after 30 s: {node}")


def test_local_node_shows_the_real_host(api: Api, client: TestClient, settings: Settings) -> None:
    assert_error(client.get("/api/nodes"), 401)
    alice = api.account("alice")  # a researcher: nodes are for every signed-in user
    node = wait_for_readings(client, alice)
    listed = client.get("/api/nodes", headers=alice.headers).json()
    assert listed["total"] == len(listed["items"]) >= 1
    assert listed["items"][0]["id"] == node["id"]  # the server's own host comes first

    assert node["name"] == socket.gethostname()
    assert node["kind"] == "local" and node["status"] == "ready" and node["schedulable"] is True
    assert node["drain_mode"] is None and node["health"] == [] and node["last_seen_at"]
    assert node["cpus"] == psutil.cpu_count()
    assert node["memory_total_bytes"] == psutil.virtual_memory().total
    assert node["disk_total_bytes"] > 0
    latest = node["latest"]
    assert 0.0 <= latest["cpu_percent"] <= 100.0
    assert 0 < latest["memory_used_bytes"] <= latest["memory_total_bytes"] == node["memory_total_bytes"]
    assert 0 < latest["disk_free_bytes"] <= latest["disk_total_bytes"]
    if node_sampler.nvml_available():
        assert node["gpu_note"] is None and len(node["gpus"]) == len(latest["gpus"])
    else:  # the usual test machine: said, not an error
        assert node["gpu_note"] == "NVML not available on this node: no GPU telemetry"
        assert node["gpus"] == [] and latest["gpus"] == []
    assert node["jobs"] == []
    assert str(settings.data_dir) not in client.get("/api/nodes", headers=alice.headers).text


def test_node_detail_history_and_bad_input(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    node = wait_for_readings(client, alice, count=2)
    detail = client.get(f"/api/nodes/{node['id']}", params={"hours": 1}, headers=alice.headers)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["id"] == node["id"] and body["name"] == node["name"]
    history = body["history"]
    assert len(history) >= 2
    assert [p["ts"] for p in history] == sorted(p["ts"] for p in history)
    for point in history:
        assert set(point) == {
            "ts",
            "cpu_percent",
            "memory_used_bytes",
            "memory_total_bytes",
            "disk_free_bytes",
            "gpus",
        }
        assert 0.0 <= point["cpu_percent"] <= 100.0 and point["memory_total_bytes"] > 0
    # A week is the longest range; hours outside 1..168 are a 422 naming the parameter.
    assert client.get(f"/api/nodes/{node['id']}?hours=168", headers=alice.headers).status_code == 200
    assert_error(
        client.get(f"/api/nodes/{node['id']}?hours=0", headers=alice.headers), 422, field="query.hours"
    )
    assert_error(client.get(f"/api/nodes/{node['id']}?hours=169", headers=alice.headers), 422)
    assert_error(client.get(f"/api/nodes/{node['id']}?hours=x", headers=alice.headers), 422)
    assert_error(client.get("/api/nodes/999999", headers=alice.headers), 404, code="node_not_found")
    assert_error(client.get("/api/nodes/0", headers=alice.headers), 422)
    assert_error(client.get(f"/api/nodes/{node['id']}"), 401)


def _run_on(database: Database, job_id: int, node_id: int) -> None:
    """Put a queued job on the node as the scheduler would have (starting → running there)."""
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        transition(session, job, JobStatus.starting, node_id=node_id)
        transition(session, job, JobStatus.running)
        session.commit()


def test_jobs_on_a_node_follow_the_ownership_policy(api: Api, client: TestClient, app: FastAPI) -> None:
    alice = api.account("alice")
    bob = api.account("bob")
    operator = api.account("olga", role="operator")
    node = wait_for_readings(client, alice)
    database: Database = app.state.db
    jobs = {}
    for owner in (alice, bob):
        dataset = sample_dataset(client, owner)
        job = create_job(client, owner, tiny_spec(dataset["id"], model_name_or_path=HUB_MODEL), start=True)
        _run_on(database, job["id"], node["id"])
        jobs[owner.username] = job["id"]

    def jobs_seen(account: Account) -> set[int]:
        listed = client.get("/api/nodes", headers=account.headers).json()["items"]
        local = next(n for n in listed if n["id"] == node["id"])
        detail = client.get(f"/api/nodes/{node['id']}", headers=account.headers).json()
        assert {j["id"] for j in detail["jobs"]} == {j["id"] for j in local["jobs"]}
        return {j["id"] for j in local["jobs"]}

    assert jobs_seen(alice) == {jobs["alice"]}
    assert jobs_seen(bob) == {jobs["bob"]}
    assert jobs_seen(operator) == set(jobs.values())
    assert jobs_seen(api.admin()) == set(jobs.values())
    entry = next(
        j
        for j in client.get(f"/api/nodes/{node['id']}", headers=operator.headers).json()["jobs"]
        if j["id"] == jobs["alice"]
    )
    assert entry == {"id": jobs["alice"], "name": "job", "status": "running", "owner_id": alice.id}
    # A finished job is no longer "on" the node.
    with database.session() as session:
        session.execute(update(Job).where(Job.id == jobs["bob"]).values(status="succeeded"))
        session.commit()
    assert jobs_seen(operator) == {jobs["alice"]}


def test_summary_is_for_operators_and_admins(api: Api, client: TestClient, app: FastAPI) -> None:
    assert_error(client.get("/api/operations/summary"), 401)
    alice = api.account("alice")
    assert_error(client.get("/api/operations/summary", headers=alice.headers), 403, code="forbidden")
    operator = api.account("olga", role="operator")
    node = wait_for_readings(client, operator)

    dataset = sample_dataset(client, alice)
    queued = create_job(client, alice, tiny_spec(dataset["id"], model_name_or_path=HUB_MODEL), start=True)
    failed = create_job(
        client, alice, tiny_spec(dataset["id"], model_name_or_path=HUB_MODEL), start=True, name="broken"
    )
    database: Database = app.state.db
    _run_on(database, failed["id"], node["id"])
    with database.session() as session:
        job = session.get(Job, failed["id"])
        assert job is not None
        transition(session, job, JobStatus.failed, error={"code": "oom", "message": "CUDA out of memory"})
        session.commit()

    for account in (operator, api.admin()):
        response = client.get("/api/operations/summary", headers=account.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"nodes", "queue", "alerts", "storage", "usage_month", "recent_failures"}
        local = next(n for n in body["nodes"] if n["id"] == node["id"])
        assert local["status"] == "ready" and 0.0 <= local["cpu_percent"] <= 100.0
        queue = body["queue"]
        assert queue["queued"] == 1 and queue["running"] == 0
        assert 0.0 <= queue["avg_wait_seconds"] <= queue["oldest_wait_seconds"]
        assert body["alerts"] == {"open": 0, "critical": 0}
        assert body["storage"]["free_bytes"] > 0 and body["storage"]["used_bytes"] >= 0
        usage = body["usage_month"]
        assert len(usage["month"]) == 7 and usage["currency"]
        failure = body["recent_failures"][0]
        assert failure["job_id"] == failed["id"] and failure["name"] == "broken"
        assert failure["code"] == "oom" and failure["message"] == "CUDA out of memory"
        assert failure["node_name"] == node["name"] and failure["finished_at"]
    assert queued["status"] == "queued"


def test_metrics_export_node_gauges(api: Api, client: TestClient) -> None:
    admin = api.admin()
    node = wait_for_readings(client, admin)
    response = client.get("/metrics", headers=admin.headers)
    assert response.status_code == 200, response.text
    text = response.text
    label = f'node="{node["name"]}"'
    assert f"loraforge_node_up{{{label}}} 1.0" in text
    for gauge in (
        "loraforge_node_cpu_percent",
        "loraforge_node_memory_used_bytes",
        "loraforge_node_disk_free_bytes",
    ):
        assert f"{gauge}{{{label}}} " in text, gauge
    assert 'loraforge_alerts_open{severity="critical"} 0.0' in text
    assert 'loraforge_queue_jobs{status="queued"} 0.0' in text
    # The HTTP metrics are still there beside them.
    assert "loraforge_http_requests_total" in text
    # A researcher's token is refused as before.
    assert_error(client.get("/metrics", headers=api.account("alice").headers), 403)


def _close_code(client: TestClient, subprotocols: list[str] | None) -> int | str:
    try:
        with client.websocket_connect("/ws/operations", subprotocols=subprotocols) as ws:
            return str(ws.receive_json().get("type"))
    except WebSocketDisconnect as closed:
        return closed.code


def test_operations_socket_for_staff_only(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    assert _close_code(client, None) == 4401
    assert _close_code(client, ["loraforge.bearer", "not-a-token"]) == 4401
    assert _close_code(client, ["loraforge.bearer", alice.token]) == 4403

    operator = api.account("olga", role="operator")
    node = wait_for_readings(client, operator)
    for account in (operator, api.admin()):
        with client.websocket_connect(
            "/ws/operations", subprotocols=["loraforge.bearer", account.token]
        ) as ws:
            first = ws.receive_json()
            assert first["type"] == "summary"
            assert {"nodes", "queue", "alerts", "storage", "usage_month", "recent_failures"} <= set(
                first["summary"]
            )
            second = ws.receive_json()
            assert second["type"] == "nodes"
            local = next(n for n in second["nodes"] if n["id"] == node["id"])
            assert local["kind"] == "local" and local["latest"] is not None
            # The loop's next round (every 0.5 s here) sends both again; heartbeats may come between.
            seen: list[str] = []
            while "nodes" not in seen or "summary" not in seen:
                frame = ws.receive_json()
                seen.append(frame["type"])
                assert frame["type"] in {"summary", "nodes", "heartbeat"}
                assert len(seen) < 200


def test_operations_socket_closes_once_the_user_is_no_longer_staff(api: Api, client: TestClient) -> None:
    operator = api.account("olga", role="operator")
    admin = api.admin()
    with client.websocket_connect("/ws/operations", subprotocols=["loraforge.bearer", operator.token]) as ws:
        assert ws.receive_json()["type"] == "summary"
        demoted = client.patch(
            f"/api/admin/users/{operator.id}", json={"role": "researcher"}, headers=admin.headers
        )
        assert demoted.status_code == 200, demoted.text
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(200):  # frames until the next refresh notices the role (every 0.5 s here)
                ws.receive_json()
        assert closed.value.code == 4403
