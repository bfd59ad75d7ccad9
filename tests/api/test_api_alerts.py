"""Health rules and alerts from injected readings: raised once per condition, delivered to the staff's
bell and own webhooks, to the operations webhook (a real HTTP receiver on loopback) and by mail (a real
SMTP server on loopback), resolved automatically when the condition clears; low disk makes a node
unhealthy and it is ready again once space is back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alert_helpers import (
    GPU_INFO,
    Receiver,
    add_node,
    add_sample,
    alerts_of,
    evaluate,
    node_row,
    reading,
    set_last_seen,
    wait,
)
from api_helpers import Account, Api
from fastapi import FastAPI
from fastapi.testclient import TestClient
from smtp_server import SmtpServer

from loraforge.db.base import utcnow
from loraforge.db.models import Alert, Job
from loraforge.settings import Settings

READING_KEYS = ("gpu_temperature", "gpu_throttle", "gpu_memory", "disk_free")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, receiver: Receiver, smtp: SmtpServer) -> Settings:
    return settings.model_copy(
        update={
            "scheduler_enabled": False,  # nothing trains here
            "outbound_allow": "127.0.0.1",  # the receivers are on loopback: the operator allows it
            "alert_webhook_url": receiver.url("/ops"),
            "webhook_backoff_seconds": 0.2,
            **smtp.settings(),
        }
    )


def _delivery(app: FastAPI, alert_id: int) -> dict[str, Any]:
    with app.state.db.session() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return dict(alert.delivery)


def _delivered(app: FastAPI, alert_id: int, phase: str | None = None) -> dict[str, Any] | None:
    delivery = _delivery(app, alert_id)
    part = delivery.get(phase, {}) if phase else delivery
    return part if part.get("webhook") != "pending" and part.get("email") != "pending" else None


def _list(client: TestClient, account: Account, **params: Any) -> dict[str, Any]:
    response = client.get("/api/alerts", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_readings_raise_once_deliver_everywhere_and_resolve_by_themselves(
    api: Api, client: TestClient, app: FastAPI, receiver: Receiver, smtp: SmtpServer
) -> None:
    operator = api.account("olga", role="operator")
    researcher = api.account("rita")
    hook = client.put(
        "/api/notifications/settings", json={"webhook_url": receiver.url("/olga")}, headers=operator.headers
    )
    assert hook.status_code == 200, hook.text
    node = add_node(app, "gpu-box", gpus=[GPU_INFO])
    hot = reading(disk_free_gb=1.0, temperature=91.0, throttle=["hw_thermal_slowdown", "sw_power_cap"],
                  gpu_memory_percent=99.0)  # fmt: skip
    add_sample(app, node, hot)

    evaluate(app)
    keys = {a.key: a for a in alerts_of(app) if a.node_id == node}
    assert set(keys) == {f"{rule}:{node}:0" for rule in READING_KEYS[:3]} | {f"disk_free:{node}"}
    assert keys[f"gpu_temperature:{node}:0"].data["threshold_c"] == 88.0  # the GPU's own slowdown point
    assert keys[f"gpu_throttle:{node}:0"].data["reasons"] == ["hw_thermal_slowdown"]  # power cap is normal
    assert keys[f"disk_free:{node}"].severity == "critical"
    # Low disk is a failing health check: the node takes no new jobs.
    row = node_row(app, node)
    assert row.status == "unhealthy" and [h["check"] for h in row.health] == ["disk_free"]

    # The same condition again raises nothing new.
    evaluate(app)
    evaluate(app)
    assert len([a for a in alerts_of(app) if a.node_id == node]) == 4

    page = _list(client, operator)
    assert page["total"] == 4 and page["open_count"] == 4
    item = next(i for i in page["items"] if i["rule"] == "disk_free")
    assert item["node_name"] == "gpu-box" and item["status"] == "open" and item["resolved_at"] is None

    # Delivered: the operations webhook and one mail per alert to every operator and admin.
    for alert in keys.values():
        done = wait(lambda a=alert: _delivered(app, a.id), f"delivery of {alert.key}")
        assert (done["webhook"], done["email"], done["notified"]) == ("sent", "sent", 2)
    raised = [b for b in receiver.bodies("/ops") if b["type"] == "alert.raised"]
    assert {b["alert"]["key"] for b in raised} == set(keys) and len(raised) == 4
    assert raised[0]["alert"]["node_name"] == "gpu-box"
    mails = [m for m in smtp.received() if "resolved" not in m.subject]
    assert len(mails) == 4
    assert set(mails[0].rcpt_tos) == {"admin@example.com", operator.email}
    assert any("°C" in m.subject for m in mails)
    # Each staff member's bell, and the operator's own webhook through the notification pipeline.
    bell = client.get("/api/notifications", headers=operator.headers).json()["items"]
    assert {n["kind"] for n in bell} == {"alert"} and len(bell) == 4
    assert client.get("/api/notifications", headers=researcher.headers).json()["items"] == []
    own = wait(
        lambda: len(receiver.bodies("/olga")) >= 4 and receiver.bodies("/olga"), "the operator's webhook"
    )
    assert {b["kind"] for b in own} == {"alert"}

    # Everything back to normal: each alert resolves by itself, the node is ready again.
    add_sample(app, node, reading())
    evaluate(app)
    resolved = [a for a in alerts_of(app) if a.node_id == node]
    assert {a.status for a in resolved} == {"resolved"} and all(a.resolved_by is None for a in resolved)
    row = node_row(app, node)
    assert row.status == "ready" and row.health == []
    assert _list(client, operator)["total"] == 0
    done_page = _list(client, operator, status="resolved")
    assert done_page["total"] == 4 and all(i["resolved_automatically"] for i in done_page["items"])
    for alert in resolved:
        wait(lambda a=alert: _delivered(app, a.id, "resolution"), f"resolution notice of {alert.key}")
    assert len([b for b in receiver.bodies("/ops") if b["type"] == "alert.resolved"]) == 4
    wait(
        lambda: len([m for m in smtp.received() if m.subject.startswith("[LoRAForge] resolved")]) == 4,
        "mails",
    )
    kinds = [n["kind"] for n in client.get("/api/notifications", headers=operator.headers).json()["items"]]
    assert kinds.count("alert.resolved") == 4

    # Once resolved, the condition coming back is a new alert.
    add_sample(app, node, reading(disk_free_gb=0.5))
    evaluate(app)
    disk = [a for a in alerts_of(app) if a.key == f"disk_free:{node}"]
    assert [a.status for a in disk] == ["resolved", "open"]


def test_a_silent_node_is_lost_keeps_its_reading_alerts_and_recovers(api: Api, app: FastAPI) -> None:
    node = add_node(app, "quiet-box", gpus=[GPU_INFO])
    add_sample(app, node, reading(temperature=95.0))
    evaluate(app)
    assert [a.rule for a in alerts_of(app) if a.node_id == node] == ["gpu_temperature"]

    # No reading for longer than node_lost_seconds: lost, and the temperature alert stays (unknown).
    set_last_seen(app, node, app.state.settings.node_lost_seconds + 30)
    evaluate(app)
    assert node_row(app, node).status == "lost"
    active = {a.rule: a for a in alerts_of(app) if a.node_id == node and a.status == "open"}
    assert set(active) == {"gpu_temperature", "node_lost"} and active["node_lost"].severity == "critical"

    add_sample(app, node, reading())
    evaluate(app)
    assert node_row(app, node).status == "ready"
    assert {a.status for a in alerts_of(app) if a.node_id == node} == {"resolved"}


def test_repeated_failures_on_one_node_raise_an_alert(api: Api, app: FastAPI) -> None:
    owner = api.account("fred")
    node = add_node(app, "flaky-box")
    add_sample(app, node, reading())
    with app.state.db.session() as session:
        for i in range(3):
            session.add(Job(owner_id=owner.id, name=f"j{i}", status="failed", spec={}, executor="local",
                            node_id=node, finished_at=utcnow()))  # fmt: skip
        session.commit()
    evaluate(app)
    (alert,) = [a for a in alerts_of(app, "node_failures:")]
    assert alert.node_id == node and alert.data["failed"] == 3 and alert.status == "open"
