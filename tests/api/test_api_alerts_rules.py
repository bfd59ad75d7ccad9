"""Alert routes and rules: who may read, acknowledge and resolve (researchers get 403), thresholds an
operator changes at run time (validated, audited, used by the next check, null restores the default),
and delivery that fails without holding anything up (a refused and a silent SMTP server, a refused
webhook): the failure is recorded on the alert."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from alert_helpers import add_node, add_sample, alerts_of, evaluate, node_row, reading, wait
from api_helpers import Api, assert_error
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loraforge.db.models import Alert
from loraforge.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"scheduler_enabled": False})


def test_roles_acknowledge_and_resolve(api: Api, client: TestClient, app: FastAPI) -> None:
    operator = api.account("olga", role="operator")
    researcher = api.account("rita")
    admin = api.admin()
    node = add_node(app, "disk-box")
    add_sample(app, node, reading(disk_free_gb=0.2))
    evaluate(app)
    (alert,) = alerts_of(app, "disk_free:")
    path = f"/api/alerts/{alert.id}"

    # A researcher sees and changes nothing of it.
    for method, url in [("GET", "/api/alerts"), ("GET", "/api/alerts/rules"), ("POST", f"{path}/acknowledge"),
                        ("POST", f"{path}/resolve")]:  # fmt: skip
        assert_error(client.request(method, url, headers=researcher.headers), 403, "forbidden")
    assert_error(client.put("/api/alerts/rules", json={"node_failures": 5}, headers=researcher.headers), 403)
    assert_error(client.get("/api/alerts"), 401)

    acked = client.post(f"{path}/acknowledge", headers=operator.headers)
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert body["status"] == "acknowledged" and body["acknowledged_by"] == "olga" and body["acknowledged_at"]
    again = client.post(f"{path}/acknowledge", headers=admin.headers)  # no change, no error
    assert again.status_code == 200 and again.json()["acknowledged_by"] == "olga"
    page = client.get("/api/alerts", headers=operator.headers).json()
    assert page["total"] == 1 and page["open_count"] == 0  # acknowledged: still active, not open

    # Acknowledged, the condition still raises nothing new.
    evaluate(app)
    assert len(alerts_of(app, "disk_free:")) == 1

    done = client.post(f"{path}/resolve", headers=admin.headers)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "resolved" and body["resolved_by"] == "admin"
    assert body["resolved_automatically"] is False
    assert_error(client.post(f"{path}/resolve", headers=operator.headers), 409, "alert_resolved")
    assert_error(client.post(f"{path}/acknowledge", headers=operator.headers), 409, "alert_resolved")
    assert_error(client.post("/api/alerts/999999/resolve", headers=operator.headers), 404, "alert_not_found")
    actions = {e["action"] for e in api.audit(admin, action="alert.")}
    assert actions == {"alert.acknowledged", "alert.resolved"}

    # Resolved by hand while the disk is still full: the next check raises it again.
    evaluate(app)
    assert [a.status for a in alerts_of(app, "disk_free:")] == ["resolved", "open"]
    listed = client.get("/api/alerts", params={"status": "all"}, headers=operator.headers).json()
    assert listed["total"] == 2
    assert_error(client.get("/api/alerts", params={"status": "bogus"}, headers=operator.headers), 422)


def test_rules_are_validated_audited_and_used(api: Api, client: TestClient, app: FastAPI) -> None:
    operator = api.account("olga", role="operator")
    rules = client.get("/api/alerts/rules", headers=operator.headers)
    assert rules.status_code == 200, rules.text
    assert rules.json()["values"] == rules.json()["defaults"] and rules.json()["overridden"] == []
    assert rules.json()["defaults"]["disk_free_gb"] == 5.0

    for body, field in [({"gpu_memory_percent": 150}, "body.gpu_memory_percent"),
                        ({"job_hung_action": "explode"}, "body.job_hung_action"),
                        ({"node_failures": 0}, "body.node_failures"),
                        ({"gpu_temperature_c": "hot"}, "body.gpu_temperature_c"),
                        ({"no_such_rule": 1}, "body.no_such_rule")]:  # fmt: skip
        assert_error(client.put("/api/alerts/rules", json=body, headers=operator.headers), 422, field=field)

    node = add_node(app, "roomy-box")
    add_sample(app, node, reading(disk_free_gb=100.0))
    evaluate(app)
    assert alerts_of(app, f"disk_free:{node}") == []

    changed = client.put("/api/alerts/rules", json={"disk_free_gb": 200, "node_failures": 7},
                         headers=operator.headers)  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert (
        changed.json()["values"]["disk_free_gb"] == 200.0 and changed.json()["values"]["node_failures"] == 7
    )
    assert changed.json()["overridden"] == ["disk_free_gb", "node_failures"]
    evaluate(app)
    (alert,) = alerts_of(app, f"disk_free:{node}")
    assert alert.data["threshold_gb"] == 200.0 and node_row(app, node).status == "unhealthy"

    # null: back to the default; names left out stay.
    reset = client.put("/api/alerts/rules", json={"disk_free_gb": None}, headers=operator.headers)
    assert reset.json()["values"]["disk_free_gb"] == 5.0 and reset.json()["overridden"] == ["node_failures"]
    evaluate(app)
    assert [a.status for a in alerts_of(app, f"disk_free:{node}")] == ["resolved"]
    assert node_row(app, node).status == "ready"
    entries = api.audit(api.admin(), action="ops.settings_changed")
    assert len(entries) == 2 and entries[0]["details"]["to"] == {"node_failures": 7}


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_smtp() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word (a hung SMTP server)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


@pytest.mark.parametrize("dead", ["refused", "silent"])
def test_failed_delivery_is_recorded(
    api: Api, app: FastAPI, settings: Settings, silent_smtp: int, dead: str
) -> None:
    api.account("olga", role="operator")
    port = silent_smtp if dead == "silent" else _closed_port()
    app.state.settings = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False, "smtp_timeout_seconds": 0.5,
            "outbound_allow": "127.0.0.1", "alert_webhook_url": f"http://127.0.0.1:{_closed_port()}/hook",
        }
    )  # fmt: skip
    node = add_node(app, "full-box")
    add_sample(app, node, reading(disk_free_gb=0.1))
    evaluate(app)
    (alert,) = alerts_of(app, "disk_free:")

    def delivery() -> dict[str, str] | None:
        with app.state.db.session() as session:
            row = session.get(Alert, alert.id)
            assert row is not None
            return (
                None
                if "pending" in (row.delivery.get("email"), row.delivery.get("webhook"))
                else row.delivery
            )

    done = wait(delivery, "the delivery outcome")
    assert done["email"] == "failed" and done["webhook"] == "failed"
    expected = "did not answer in time" if dead == "silent" else "refused the connection"
    assert expected in done["email_error"]
    assert done["webhook_error"] == "delivery failed"
    assert "password" not in str(done)
