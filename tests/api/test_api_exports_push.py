"""Pushing a version to a hub: the real route, service and huggingface_hub client, with only the
client's two network calls (`HfApi.create_repo`, `HfApi.upload_folder`) replaced. Checks what the Hub
would receive (the version's own files, the user's token inside the client), field-named errors, the
refused token as a 422 on `token`, isolation, the outbound policy on the Hub's endpoint, and that the
token reaches no response, audit entry or log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
from api_helpers import Account, Api, assert_error
from fastapi import FastAPI
from fastapi.testclient import TestClient
from huggingface_hub import CommitInfo, HfApi, RepoUrl
from huggingface_hub.errors import HfHubHTTPError
from test_api_exports import _end_job, _export, _fake_engine_output, _tick, register_base

from loraforge.db.models import JobStatus
from loraforge.engine.export import hub_push
from loraforge.settings import Settings

TOKEN = "hf_PushSecretToken0123456789abcdef"


@pytest.fixture
def settings(settings: Settings, demo_model_cache: Path) -> Settings:
    return settings.model_copy(
        update={"scheduler_enabled": False, "dataset_import_roots": str(demo_model_cache.parent)}
    )


@pytest.fixture(autouse=True)
def public_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    # The default endpoint (the public Hub): whatever the machine running the tests has set.
    monkeypatch.delenv("HF_ENDPOINT", raising=False)


def _record_hub(monkeypatch: pytest.MonkeyPatch, fail: BaseException | None = None) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def create_repo(self: HfApi, repo_id: str, **kw: Any) -> RepoUrl:
        calls.append({"call": "create_repo", "token": self.token, "endpoint": self.endpoint,
                      "repo_id": repo_id, **kw})  # fmt: skip
        if fail is not None:
            raise fail
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self: HfApi, **kw: Any) -> CommitInfo:
        folder = Path(kw["folder_path"])
        sent = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        calls.append({"call": "upload_folder", "token": self.token, "files": sent, **kw})
        return CommitInfo(
            commit_url=f"https://huggingface.co/{kw['repo_id']}/commit/c0ffee",
            commit_message=kw["commit_message"], commit_description="", oid="c0ffee",
        )  # fmt: skip

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def _ready_export(
    client: TestClient, app: FastAPI, settings: Settings, admin: Account, folder: Path
) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """A base model and a finished GGUF export of it (the engine's output written as it would be)."""
    model = register_base(client, admin, folder)
    started = _export(client, admin, model["current_version"]["id"], format="gguf", quantization="q8_0")
    assert started.status_code == 201, started.text
    job_id, version = started.json()["job_id"], started.json()["version"]
    data, _ = _fake_engine_output(settings.runs_dir / str(job_id) / "output")
    _end_job(app, job_id, JobStatus.succeeded)
    _tick(app, settings)
    return model, version, data


def _push(client: TestClient, account: Account, version_id: int, **body: Any) -> Any:
    return client.post(f"/api/models/versions/{version_id}/push", json=body, headers=account.headers)


def test_push_sends_the_version_files_with_the_token_and_never_shows_it(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model_cache: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    admin = api.admin()
    bob = api.account("bob")
    model, version, data = _ready_export(client, app, settings, admin, demo_model_cache)
    vid = version["id"]
    calls = _record_hub(monkeypatch)

    pushed = _push(client, admin, vid, hub="huggingface", repo_id="alice/tiny-q8", token=TOKEN)
    assert pushed.status_code == 200, pushed.text
    assert pushed.json() == {
        "url": "https://huggingface.co/alice/tiny-q8",
        "commit_url": "https://huggingface.co/alice/tiny-q8/commit/c0ffee", "revision": "c0ffee",
        "hub": "huggingface", "repo_id": "alice/tiny-q8", "private": True, "files": 2,
    }  # fmt: skip
    create, upload = calls
    assert create["token"] == TOKEN and upload["token"] == TOKEN
    assert create["endpoint"] == "https://huggingface.co"  # the URL the policy checked is the one used
    assert (create["repo_id"], create["private"], create["exist_ok"]) == ("alice/tiny-q8", True, True)
    assert upload["repo_id"] == "alice/tiny-q8" and upload["repo_type"] == "model"
    # the real code sent the version's own folder: the GGUF and export.json the export left there
    folder = settings.models_dir / str(model["id"]) / "versions" / str(vid)
    assert Path(upload["folder_path"]) == folder
    assert set(upload["files"]) == {"tiny-base-v1.q8_0.gguf", "export.json"}
    assert upload["files"]["tiny-base-v1.q8_0.gguf"] == data
    public = _push(client, admin, vid, hub="huggingface", repo_id="alice/tiny-q8", token=TOKEN, private=False)
    assert public.status_code == 200 and public.json()["private"] is False and calls[2]["private"] is False

    # field errors, each naming its field, none echoing the token
    answers = [
        assert_error(_push(client, admin, vid, hub="gitlab", repo_id="a/b", token=TOKEN), 422,
                     field="body.hub"),
        assert_error(_push(client, admin, vid, hub="huggingface", repo_id="not a repo", token=TOKEN), 422,
                     code="invalid_repo_id", field="body.repo_id"),
        assert_error(_push(client, admin, vid, hub="huggingface", repo_id="a/b", token=""), 422,
                     field="body.token"),
        assert_error(_push(client, admin, vid, hub="huggingface", repo_id="a/b", token=TOKEN * 20), 422,
                     field="body.token"),
        assert_error(_push(client, admin, vid, hub="huggingface", repo_id="a/b"), 422, field="body.token"),
        assert_error(_push(client, admin, vid, hub="huggingface", repo_id="a/b", token=TOKEN, extra=1), 422,
                     field="body.extra"),
        # ModelScope's client is not installed here: said so, nothing sent
        assert_error(_push(client, admin, vid, hub="modelscope", repo_id="a/b", token=TOKEN), 409,
                     code="hub_unavailable")
        if not hub_push.available("modelscope")[0] else {},
    ]  # fmt: skip
    assert len(calls) == 4 and all(TOKEN not in str(answer) for answer in answers)

    # a stranger learns nothing; a reader who may not change the model may not publish it
    assert_error(_push(client, bob, vid, hub="huggingface", repo_id="b/b", token=TOKEN), 404)
    client.patch(f"/api/models/{model['id']}", json={"shared": True}, headers=admin.headers)
    assert_error(
        _push(client, bob, vid, hub="huggingface", repo_id="b/b", token=TOKEN), 403, code="not_owner"
    )
    assert_error(client.post(f"/api/models/versions/{vid}/push", json={}), 401)
    assert len(calls) == 4

    audits = api.audit(admin, action="model.pushed")
    assert len(audits) == 2 and audits[-1]["details"]["repo_id"] == "alice/tiny-q8"
    assert {a["details"]["private"] for a in audits} == {True, False}
    assert all(a["details"]["hub"] == "huggingface" and a["details"]["version_id"] == vid for a in audits)
    everything = client.get("/api/admin/audit", params={"page_size": 100}, headers=admin.headers).text
    assert TOKEN not in everything and TOKEN not in caplog.text


def test_hub_refusals_become_clear_errors_without_the_token(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model_cache: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    admin = api.admin()
    _, version, _ = _ready_export(client, app, settings, admin, demo_model_cache)
    vid = version["id"]

    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    refused = HfHubHTTPError(
        f"403 Forbidden for token {TOKEN}", response=httpx2.Response(403, request=request)
    )
    _record_hub(monkeypatch, fail=refused)
    auth = _push(client, admin, vid, hub="huggingface", repo_id="alice/x", token=TOKEN)
    assert_error(auth, 422, code="hub_auth_failed", field="body.token")  # not 401: that signs the user out
    _record_hub(monkeypatch, fail=httpx2.ConnectError(f"connection refused ({TOKEN})"))
    down = _push(client, admin, vid, hub="huggingface", repo_id="alice/x", token=TOKEN)
    assert_error(down, 502, code="hub_unreachable")
    _record_hub(monkeypatch, fail=HfHubHTTPError("500 boom", response=httpx2.Response(500, request=request)))
    assert_error(_push(client, admin, vid, hub="huggingface", repo_id="alice/x", token=TOKEN), 502,
                 code="hub_push_failed")  # fmt: skip
    assert all(TOKEN not in r.text for r in (auth, down)) and TOKEN not in caplog.text
    assert api.audit(admin, action="model.pushed") == []


def test_hub_endpoint_goes_through_the_outbound_policy(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    admin = api.admin()
    _, version, _ = _ready_export(client, app, settings, admin, demo_model_cache)
    calls = _record_hub(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # a mirror on loopback: not allowed
    refused = _push(client, admin, version["id"], hub="huggingface", repo_id="alice/x", token=TOKEN)
    assert_error(refused, 422, code="destination_not_allowed", field="body.hub")
    assert calls == [] and TOKEN not in refused.text

    # an administrator who allows the mirror opens it; the client is handed that very URL
    monkeypatch.setattr(app.state, "settings", settings.model_copy(update={"outbound_allow": "127.0.0.1:9"}))
    ok = _push(client, admin, version["id"], hub="huggingface", repo_id="alice/x", token=TOKEN)
    assert ok.status_code == 200, ok.text
    assert calls[0]["endpoint"] == "http://127.0.0.1:9"


def test_a_version_without_files_or_not_ready_is_refused(
    api: Api, client: TestClient, demo_model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = api.admin()
    model = register_base(client, admin, demo_model_cache)
    exporting = _export(client, admin, model["current_version"]["id"], format="gguf").json()["version"]
    calls = _record_hub(monkeypatch)
    assert_error(_push(client, admin, exporting["id"], hub="huggingface", repo_id="a/b", token=TOKEN), 409,
                 code="model_not_ready")  # fmt: skip
    assert calls == []
