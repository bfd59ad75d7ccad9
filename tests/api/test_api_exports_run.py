"""Exports end to end with the real engine: the demo model registered as a server folder is exported to
GGUF Q8_0 by a queued job of stage `export`; the tick hook makes the new version `ready` with its
size, sha256 and verification; the file downloads whole and resumed with Range after a "dropped" first
half (the same bytes, the same sha256); chat refuses the export; another user cannot export, see or
download it."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from fastapi.testclient import TestClient
from job_helpers import create_job, sample_dataset, tiny_spec, wait_for

from loraforge.db.models import User
from loraforge.services.models import resolution
from loraforge.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.engine_heavy]


@pytest.fixture
def settings(settings: Settings, demo_model_cache: Path) -> Settings:
    # Server folders may be registered from where the session's demo model was built.
    return settings.model_copy(update={"dataset_import_roots": str(demo_model_cache.parent)})


def _version_when(client: TestClient, account: Account, version_id: int, status: str) -> dict[str, Any]:
    """The version once the tick after its job's end has moved it (the hook runs in the same tick)."""
    deadline = time.monotonic() + 30
    while True:
        version: dict[str, Any] = client.get(
            f"/api/models/versions/{version_id}", headers=account.headers
        ).json()
        if version["status"] == status or time.monotonic() > deadline:
            return version
        time.sleep(0.1)


def test_export_gguf_q8_0_verified_and_resumable_download(
    api: Api, client: TestClient, settings: Settings, demo_model_cache: Path
) -> None:
    admin = api.admin()
    bob = api.account("bob")
    body = {"name": "tiny-base", "source": "local", "ref": str(demo_model_cache)}
    model = client.post("/api/models", json=body, headers=admin.headers).json()
    source = model["current_version"]

    assert_error(client.post(f"/api/models/versions/{source['id']}/exports", json={"format": "gguf"},
                             headers=bob.headers), 404)  # fmt: skip
    started = client.post(
        f"/api/models/versions/{source['id']}/exports", json={"format": "gguf", "quantization": "q8_0"},
        headers=admin.headers,
    )  # fmt: skip
    assert started.status_code == 201, started.text
    job_id, version_id = started.json()["job_id"], started.json()["version"]["id"]
    wait_for(client, admin, job_id, {"succeeded"}, timeout=300)
    events = client.get(f"/api/jobs/{job_id}/events", headers=admin.headers).json()["items"]
    assert any(e["type"] == "status" and e.get("status") == "verifying" for e in events), events

    version = _version_when(client, admin, version_id, "ready")
    assert version["status"] == "ready" and version["is_current"] is False, version
    assert version["format"] == "gguf" and version["quantization"] == "q8_0"
    assert version["verification"]["ok"] is True and version["verification"]["identical"] is True
    assert version["size_bytes"] > 0 and len(version["sha256"]) == 64
    main = next(f for f in version["export"]["files"] if f["name"].endswith(".gguf"))
    assert main["sha256"] == version["sha256"]

    url = f"/api/models/versions/{version_id}/files/{main['name']}"
    whole = client.get(url, headers=admin.headers)
    assert whole.status_code == 200 and whole.headers["etag"] == f'"{version["sha256"]}"'
    assert whole.content[:4] == b"GGUF" and hashlib.sha256(whole.content).hexdigest() == version["sha256"]
    size = len(whole.content)
    cut = size // 2
    first = client.get(url, headers={**admin.headers, "Range": f"bytes=0-{cut}"})
    rest = client.get(url, headers={**admin.headers, "Range": f"bytes={cut + 1}-"})
    assert (first.status_code, rest.status_code) == (206, 206)
    assert rest.headers["content-range"] == f"bytes {cut + 1}-{size - 1}/{size}"
    assert hashlib.sha256(first.content + rest.content).hexdigest() == version["sha256"]
    assert client.get(url, headers={**admin.headers, "Range": f"bytes={size + 10}-"}).status_code == 416

    assert_error(client.get(url, headers=bob.headers), 404)
    assert_error(client.get(f"/api/models/versions/{version_id}", headers=bob.headers), 404)
    chat = client.post(
        "/v1/chat/completions", headers=admin.headers,
        json={"model": f"tiny-base@v{version['number']}", "messages": [{"role": "user", "content": "hi"}]},
    )  # fmt: skip
    assert chat.status_code == 409 and "model_not_servable" in chat.text, chat.text
    actions = [e["action"] for e in api.audit(admin, action="model.")]
    assert "model.export_requested" in actions


def test_lora_exports_adapter_gguf_and_merged_weights(
    api: Api, client: TestClient, settings: Settings, demo_model: Path
) -> None:
    """A researcher's own LoRA (trained here): a GGUF adapter (not servable) and merged safetensors
    (servable, yet never the model's current version)."""
    alice = api.account("alice")
    dataset = sample_dataset(client, alice)
    job = create_job(client, alice, tiny_spec(dataset["id"], max_steps=2), start=True, name="tiny")
    wait_for(client, alice, job["id"], {"succeeded"})
    model = client.get("/api/models", params={"job_id": job["id"]}, headers=alice.headers).json()["items"][0]
    adapter = model["current_version"]
    assert adapter["weights"] == "adapter" and adapter["format"] == "safetensors"

    started = {}
    for fmt, quant in (("gguf_lora", "f16"), ("merged", None)):
        response = client.post(
            f"/api/models/versions/{adapter['id']}/exports", json={"format": fmt, "quantization": quant},
            headers=alice.headers,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        started[fmt] = response.json()
    for fmt, body in started.items():
        wait_for(client, alice, body["job_id"], {"succeeded"}, timeout=300)
        version = _version_when(client, alice, body["version"]["id"], "ready")
        assert version["status"] == "ready" and version["is_current"] is False, version
        assert version["parent_version_id"] == adapter["id"] and version["base"]["name"] == "demo-tiny"
        started[fmt] = version

    lora = started["gguf_lora"]
    assert lora["format"] == "gguf_lora" and lora["weights"] == "adapter" and lora["quantization"] == "f16"
    assert lora["verification"] is not None and lora["sha256"]
    merged = started["merged"]
    assert (
        merged["format"] == "safetensors" and merged["weights"] == "full" and merged["quantization"] is None
    )
    names = {f["name"] for f in merged["export"]["files"]}
    assert "config.json" in names or any(n.endswith(".safetensors") for n in names), names
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        user = session.get(User, alice.id)
        assert user is not None
        served = resolution.resolve_for_inference(
            session, settings=settings, actor=user, name=f"{model['name']}@v{merged['number']}"
        )
        assert served.adapter is None and (Path(served.base) / "config.json").is_file()
    chat = client.post(
        "/v1/chat/completions", headers=alice.headers,
        json={"model": f"{model['name']}@v{lora['number']}", "messages": [{"role": "user", "content": "hi"}]},
    )  # fmt: skip
    assert chat.status_code == 409 and "model_not_servable" in chat.text, chat.text
    current = client.get(f"/api/models/{model['id']}", headers=alice.headers).json()["current_version_id"]
    assert current == adapter["id"]
