"""/api/providers: CRUD, sharing, encrypted keys, model refresh, and chat through `<provider>/<model>`.

The provider in the end-to-end test is a second builtin worker (a real subprocess on the demo
model, `--model demo=<folder>`), reached over HTTP with its token as the provider's API key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from api_helpers import Api, assert_error
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openai_live import ThreadServer, Worker, api_key, free_port
from sqlalchemy import text

from loraforge.db.models import Provider
from loraforge.settings import Settings

KEY = "sk-test-secret-value-9876"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The provider in the end-to-end test is a worker on loopback: the operator allows that address.
    return settings.model_copy(update={"outbound_allow": "127.0.0.1"})


def _create(client: TestClient | httpx.Client, headers: dict[str, str], **body: object) -> httpx.Response:
    payload = {"name": "prov", "base_url": "https://api.example.com/v1", **body}
    return client.post("/api/providers", json=payload, headers=headers)


def test_crud_validation_sharing_and_access(client: TestClient, api: Api, app: FastAPI) -> None:
    alice, bob, admin = api.account("alice"), api.account("bob"), api.admin()

    created = _create(client, alice.headers, name="alice-prov", api_key=KEY)
    assert created.status_code == 201, created.text
    provider = created.json()
    assert provider["has_api_key"] is True and provider["api_key_last4"] == "9876"
    assert provider["shared"] is False and provider["owner_id"] == alice.id and provider["editable"] is True
    assert provider["base_url"] == "https://api.example.com/v1" and provider["models"] == []
    assert KEY not in created.text and "api_key" not in provider
    pid = provider["id"]

    # The key is encrypted at rest: no column of the row holds it.
    with app.state.db.session_factory() as session:
        stored = session.get(Provider, pid)
        assert stored is not None and stored.api_key_encrypted and KEY not in stored.api_key_encrypted
        row = session.execute(text("SELECT * FROM providers WHERE id = :id"), {"id": pid}).one()
        assert all(KEY not in str(value) for value in row)

    # Validation: name, base URL, duplicates, sharing.
    assert_error(_create(client, alice.headers, name="Bad Name"), 422, field="body.name")
    assert_error(
        _create(client, alice.headers, name="x", base_url="ftp://example.com"), 422, field="body.base_url"
    )
    assert_error(
        _create(client, alice.headers, name="x", base_url="https://user:pw@example.com/v1"),
        422,
        field="body.base_url",
    )
    assert_error(
        _create(client, alice.headers, name="x", base_url="https://h/v1?k=1"), 422, field="body.base_url"
    )
    assert_error(_create(client, bob.headers, name="alice-prov"), 409, "provider_name_taken", "body.name")
    assert_error(_create(client, bob.headers, name="bob-shared", shared=True), 403)

    # Another researcher: the private provider does not exist for them.
    assert [p["name"] for p in client.get("/api/providers", headers=bob.headers).json()["items"]] == []
    assert_error(client.get(f"/api/providers/{pid}", headers=bob.headers), 404, "provider_not_found")
    assert_error(client.patch(f"/api/providers/{pid}", json={"enabled": False}, headers=bob.headers), 404)
    assert_error(client.post(f"/api/providers/{pid}/refresh-models", headers=bob.headers), 404)
    assert_error(client.delete(f"/api/providers/{pid}", headers=bob.headers), 404)

    # Shared (admins): everyone sees it, only admins change it.
    shared = _create(client, admin.headers, name="shared-prov", shared=True)
    assert shared.status_code == 201, shared.text
    sid = shared.json()["id"]
    assert shared.json()["owner_id"] is None and shared.json()["has_api_key"] is False
    seen = client.get("/api/providers", headers=bob.headers).json()["items"]
    assert [(p["name"], p["editable"]) for p in seen] == [("shared-prov", False)]
    assert_error(
        client.patch(f"/api/providers/{sid}", json={"enabled": False}, headers=bob.headers), 403, "not_owner"
    )
    assert_error(client.delete(f"/api/providers/{sid}", headers=bob.headers), 403, "not_owner")
    assert_error(client.patch(f"/api/providers/{pid}", json={"shared": True}, headers=alice.headers), 403)

    # Changes: rename, disable, remove the key; null for a required field is refused.
    changed = client.patch(
        f"/api/providers/{pid}",
        json={"name": "alice-renamed", "enabled": False, "api_key": None},
        headers=alice.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "alice-renamed" and changed.json()["enabled"] is False
    assert changed.json()["has_api_key"] is False and changed.json()["api_key_last4"] is None
    assert_error(client.patch(f"/api/providers/{pid}", json={"base_url": None}, headers=alice.headers), 422)
    assert_error(
        client.patch(f"/api/providers/{pid}", json={"name": "shared-prov"}, headers=alice.headers),
        409,
        "provider_name_taken",
    )

    assert client.delete(f"/api/providers/{pid}", headers=alice.headers).status_code == 204
    assert_error(client.get(f"/api/providers/{pid}", headers=alice.headers), 404)
    actions = {entry["action"] for entry in api.audit(admin, action="provider.")}
    assert actions == {"provider.created", "provider.updated", "provider.deleted"}


# ---- end to end: a second builtin worker as the provider --------------------------------------------


@pytest.fixture
def worker(demo_model_cache: Path, tmp_path: Path) -> Iterator[Worker]:
    with Worker({"demo": demo_model_cache}, tmp_path / "logs") as running:
        yield running


@pytest.fixture
def live(app: FastAPI) -> Iterator[ThreadServer]:
    with ThreadServer(app) as server:
        yield server


@pytest.mark.slow
def test_provider_backed_by_a_builtin_worker(live: ThreadServer, worker: Worker) -> None:
    with httpx.Client(base_url=live.url, timeout=120) as http:
        api = Api(http)  # type: ignore[arg-type]  (an httpx.Client speaks the TestClient's interface)
        alice, bob = api.account("alice"), api.account("bob")
        created = _create(http, alice.headers, name="local", base_url=worker.url, api_key=worker.token)
        assert created.status_code == 201, created.text
        pid = created.json()["id"]

        refreshed = http.post(f"/api/providers/{pid}/refresh-models", headers=alice.headers)
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["models"] == ["demo"] and refreshed.json()["models_refreshed_at"]

        client = openai.OpenAI(
            base_url=f"{live.url}/v1", api_key=api_key(http, alice), max_retries=0, timeout=120
        )
        assert "local/demo" in [m.id for m in client.models.list().data]
        assert client.models.retrieve("local/demo").owned_by == "local"
        answer = client.chat.completions.create(
            model="local/demo", messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
        assert (
            answer.model == "local/demo" and answer.usage is not None and answer.usage.completion_tokens >= 1
        )
        chunks = list(
            client.chat.completions.create(
                model="local/demo",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=4,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert chunks[-1].usage is not None and any(c.choices and c.choices[0].finish_reason for c in chunks)
        # Once refreshed, only listed models resolve.
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="local/other", messages=[{"role": "user", "content": "hi"}])

        # Another researcher can neither see nor use the private provider.
        bob_client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=api_key(http, bob), max_retries=0)
        assert "local/demo" not in [m.id for m in bob_client.models.list().data]
        with pytest.raises(openai.NotFoundError):
            bob_client.chat.completions.create(
                model="local/demo", messages=[{"role": "user", "content": "hi"}]
            )
        assert_error(http.post(f"/api/providers/{pid}/refresh-models", headers=bob.headers), 404)

        # A wrong key and an unreachable address: 502 provider_unreachable with the reason.
        wrong = _create(http, alice.headers, name="wrong-key", base_url=worker.url, api_key="not-the-token")
        error = assert_error(
            http.post(f"/api/providers/{wrong.json()['id']}/refresh-models", headers=alice.headers),
            502,
            "provider_unreachable",
        )
        assert "credentials" in error["message"]
        closed = _create(http, alice.headers, name="closed", base_url=f"http://127.0.0.1:{free_port()}/v1")
        error = assert_error(
            http.post(f"/api/providers/{closed.json()['id']}/refresh-models", headers=alice.headers),
            502,
            "provider_unreachable",
        )
        assert "unreachable" in error["message"] and "onnect" not in error["message"]  # no low-level reason
        assert http.get(f"/api/providers/{pid}", headers=alice.headers).json()["models"] == ["demo"]

        # Disabled: gone from /v1/models and from chat.
        assert (
            http.patch(f"/api/providers/{pid}", json={"enabled": False}, headers=alice.headers).status_code
            == 200
        )
        assert "local/demo" not in [m.id for m in client.models.list().data]
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="local/demo", messages=[{"role": "user", "content": "hi"}])
