"""/api/deployments with a real builtin worker subprocess on the demo model."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
from api_helpers import Account, Api, assert_error
from fastapi import FastAPI

from loraforge.db.models import ModelVersion, RegisteredModel
from loraforge.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The builtin worker whatever the host has (auto would pick vLLM on a GPU machine with vLLM).
    return settings.model_copy(
        update={"inference_backend": "builtin", "inference_start_timeout_seconds": 180.0}
    )


def _register(app: FastAPI, owner: Account, name: str, folder: Path, *, shared: bool = False) -> None:
    """A full-weights model version on `folder`, written straight to the registry tables."""
    with app.state.db.session() as session:
        model = RegisteredModel(owner_id=owner.id, name=name, kind="base", source="local", shared=shared)
        session.add(model)
        session.flush()
        version = ModelVersion(model_id=model.id, number=1, weights="full", status="ready", path=str(folder))
        session.add(version)
        session.flush()
        model.current_version_id = version.id
        session.commit()


def test_deploy_list_get_stop_with_access_rules(api: Api, app: FastAPI, demo_model: Path) -> None:
    client = api.client
    alice, bob, admin = api.account("alice"), api.account("bob"), api.admin()
    operator = api.account("olga", role="operator")
    _register(app, alice, "alice-tiny", demo_model.resolve())

    # Another researcher cannot deploy a private model: it does not exist for them.
    assert_error(
        client.post("/api/deployments", json={"model": "alice-tiny"}, headers=bob.headers),
        404,
        "model_not_found",
    )
    assert_error(
        client.post("/api/deployments", json={"model": ""}, headers=alice.headers), 422, field="body.model"
    )
    assert_error(client.post("/api/deployments", json={"model": "no-such-model"}, headers=alice.headers), 404)

    created = client.post("/api/deployments", json={"model": "alice-tiny"}, headers=alice.headers)
    assert created.status_code == 201, created.text
    deployment = created.json()
    assert deployment["id"] and deployment["status"] == "ready" and deployment["backend"] == "builtin"
    assert deployment["model"] == "alice-tiny" and deployment["version_number"] == 1
    assert deployment["owner_id"] == alice.id and deployment["memory_bytes"] > 0
    assert deployment["requests_served"] == 0 and deployment["error"] is None
    worker = app.state.inference.worker
    assert worker is not None and worker.alive

    # Deploying again answers with the same deployment.
    again = client.post("/api/deployments", json={"model": "alice-tiny"}, headers=alice.headers).json()
    assert again["id"] == deployment["id"]

    path = f"/api/deployments/{deployment['id']}"
    assert client.get(path, headers=alice.headers).json()["status"] == "ready"
    assert [d["id"] for d in client.get("/api/deployments", headers=alice.headers).json()["items"]] == [
        deployment["id"]
    ]
    assert client.get("/api/deployments", headers=bob.headers).json() == {
        "items": [], "total": 0, "page": 1, "page_size": 20,
    }  # fmt: skip
    for staff in (admin, operator):
        assert client.get(path, headers=staff.headers).status_code == 200
        assert client.get("/api/deployments", headers=staff.headers).json()["total"] == 1
    assert_error(client.get(path, headers=bob.headers), 404, "deployment_not_found")
    assert_error(client.post(f"{path}/stop", headers=bob.headers), 404)
    assert_error(client.get("/api/deployments/999999", headers=alice.headers), 404, "deployment_not_found")
    ready = client.get("/api/deployments", params={"status": "ready"}, headers=alice.headers).json()
    assert ready["total"] == 1
    assert_error(client.get("/api/deployments", params={"status": "bogus"}, headers=alice.headers), 422)

    # The demo model has no registry version, but its deployment is a row like any other (same worker).
    demo = client.post("/api/deployments", json={"model": "demo-tiny"}, headers=bob.headers)
    assert demo.status_code == 201, demo.text
    demo_row = demo.json()
    assert demo_row["model"] == "demo-tiny" and demo_row["version_id"] is None
    assert demo_row["status"] == "ready" and demo_row["owner_id"] == bob.id
    assert app.state.inference.worker is worker

    stopped = client.post(f"{path}/stop", headers=alice.headers)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "stopped" and stopped.json()["stopped_at"]
    assert (
        client.get("/api/deployments", params={"status": "ready"}, headers=alice.headers).json()["total"] == 0
    )
    actions = [entry["action"] for entry in api.audit(admin, action="deployment.")]
    assert sorted(actions) == ["deployment.started", "deployment.started", "deployment.stopped"]

    # Nothing of alice's is left; bob's demo-tiny still holds the worker until it idles out or the app stops.
    assert_error(client.post(f"/api/deployments/{demo_row['id']}/stop", headers=alice.headers), 404)
    assert worker.alive
    pid = worker.process.pid
    client.portal.call(app.state.inference.close)  # what app shutdown does: stop the worker
    assert app.state.inference.worker is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
