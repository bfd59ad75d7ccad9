"""The model registry over REST: registering base models (hub record, server folder), fine-tuned models
registered from a succeeded job's output (lineage, filters), versions, tags and notes, downloads,
access for owners / shared readers / strangers / staff, delete while in use, retention, and the
resolution the gateway and job specs use. The job here finishes by hand (the scheduler is off); the
end-to-end run with the real engine is in test_api_models_merge.py."""

from __future__ import annotations

import io
import json
import shutil
import struct
import tarfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from fastapi import FastAPI
from fastapi.testclient import TestClient
from job_helpers import create_job, sample_dataset, tiny_spec

from loraforge.db.models import Job, JobStatus
from loraforge.errors import Conflict, NotFound
from loraforge.services.jobs import merge, retention
from loraforge.services.jobs import specs as job_specs
from loraforge.services.jobs.states import transition
from loraforge.services.models import fetch as model_fetch
from loraforge.services.models import resolution, results
from loraforge.services.platform.owner_names import NAME_MAX_LENGTH
from loraforge.settings import Settings


@pytest.fixture
def settings(settings: Settings, demo_model_cache: Path) -> Settings:
    # Server folders may be registered from where the session's demo model was built.
    return settings.model_copy(
        update={"scheduler_enabled": False, "dataset_import_roots": str(demo_model_cache.parent)}
    )


def _safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    """A valid safetensors file of float32 zeros (header: 8-byte length + JSON)."""
    header: dict[str, Any] = {}
    offset = 0
    for name, shape in shapes.items():
        size = 4
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def _succeeded_job(
    client: TestClient,
    app: FastAPI,
    settings: Settings,
    account: Account,
    *,
    suffix: str | None = None,
    register: bool = True,
    **spec: Any,
) -> dict[str, Any]:
    """A training job that succeeded with a LoRA adapter in RUN_DIR/output, registered the way the
    scheduler does it (in the transaction that moves the job to succeeded)."""
    dataset = sample_dataset(client, account)
    job = create_job(client, account, tiny_spec(dataset["id"], **spec), name="tiny")
    out = settings.runs_dir / str(job["id"]) / "output"
    out.mkdir(parents=True)
    (out / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": 8, "base_model_name_or_path": "demo"}), encoding="utf-8"
    )
    _safetensors(out / "adapter_model.safetensors", {"a.lora_A.weight": [8, 16], "a.lora_B.weight": [16, 8]})
    (out / "summary.json").write_text(json.dumps({"final_train_loss": 1.5, "steps": 4}), encoding="utf-8")
    with app.state.db.session() as session:
        row = session.get(Job, job["id"])
        assert row is not None
        if suffix is not None:
            row.fine_tuning = {"suffix": suffix}
        for target in (JobStatus.queued, JobStatus.starting, JobStatus.running, JobStatus.succeeded):
            transition(session, row, target)
        if register:
            results.register_job_result(session, settings=settings, job=row)
        session.commit()
    job["dataset"] = dataset
    return job


def _model_of_job(client: TestClient, account: Account, job_id: int) -> dict[str, Any]:
    response = client.get("/api/models", params={"job_id": job_id}, headers=account.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 1, items
    model: dict[str, Any] = items[0]
    return model


def test_a_succeeded_job_is_registered_with_lineage(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    job = _succeeded_job(client, app, settings, alice)
    model = _model_of_job(client, alice, job["id"])
    assert model["name"] == f"ft:demo-tiny:lf:{job['id']}"
    assert model["kind"] == "finetuned" and model["owner"] == "alice" and model["can_edit"] is True
    assert model["shared"] is False and model["version_count"] == 1
    version = model["current_version"]
    assert version["number"] == 1 and version["weights"] == "adapter" and version["status"] == "ready"
    assert version["name"] == f"{model['name']}@v1" and version["is_current"] is True
    assert version["base"] == {"model_id": None, "version_id": None, "name": "demo-tiny", "ref": "demo-tiny"}
    assert version["source_job"] == {"id": job["id"], "name": "tiny", "status": "succeeded"}
    assert model["description"] == ""  # the UI tells the lineage in the reader's language
    # … and the job points back at the version it produced, in every view of it.
    produced = {
        "model_id": model["id"],
        "model_name": model["name"],
        "version_id": version["id"],
        "version_number": 1,
    }
    assert client.get(f"/api/jobs/{job['id']}", headers=alice.headers).json()["produced_model"] == produced
    admin = api.admin()
    listed = client.get("/api/jobs", headers=admin.headers).json()["items"]
    assert [(j["id"], j["owner"], j["produced_model"]) for j in listed] == [(job["id"], "alice", produced)]
    dataset = job["dataset"]
    assert version["dataset"] == {
        "id": dataset["id"],
        "name": dataset["name"],
        "version_id": dataset["current_version_id"],
        "version_number": 1,
    }
    assert version["metrics"]["final_train_loss"] == 1.5 and version["metrics"]["steps"] == 4
    assert version["info"]["param_count"] == 8 * 16 * 2 and version["info"]["lora_rank"] == 8
    assert version["spec"]["dataset"] == dataset["id"] and version["size_bytes"] > 0

    # dataset version -> model side of the lineage; name filter; kind filter
    by_data = client.get(
        "/api/models", params={"dataset_version_id": dataset["current_version_id"]}, headers=alice.headers
    ).json()
    assert [m["id"] for m in by_data["items"]] == [model["id"]]
    assert client.get("/api/models", params={"q": "DEMO-TINY"}, headers=alice.headers).json()["total"] == 1
    assert client.get("/api/models", params={"kind": "base"}, headers=alice.headers).json()["total"] == 0
    assert client.get("/api/models", params={"job_id": 999_999}, headers=alice.headers).json()["items"] == []

    # the name the OpenAI fine-tuning API reports, and /v1 resolution
    with app.state.db.session() as session:
        assert resolution.fine_tuned_model_name(session, job_id=job["id"]) == model["name"]
        owner = session.get(Job, job["id"])
        assert owner is not None
        actor = _user(session, alice)
        served = resolution.resolve_for_inference(session, settings=settings, actor=actor, name=model["name"])
        assert served.adapter == settings.runs_dir / str(job["id"]) / "output"
        assert served.base == str(settings.models_dir / "demo-tiny")
        assert served.model_id == model["id"] and served.version_id == version["id"]
        assert resolution.resolve_for_inference(
            session, settings=settings, actor=actor, name=f"{model['name']}@v1"
        ) == served.__class__(**{**served.__dict__, "name": f"{model['name']}@v1"})
        with pytest.raises(NotFound) as missing:
            resolution.resolve_for_inference(
                session, settings=settings, actor=actor, name=f"{model['name']}@v2"
            )
        assert missing.value.code == "model_not_found"
        names = [m.name for m in resolution.visible_models(session, settings=settings, actor=actor)]
        assert names == ["demo-tiny", model["name"]]

    # registering the same job again is a no-op (a final event seen twice)
    with app.state.db.session() as session:
        row = session.get(Job, job["id"])
        assert row is not None
        again = results.register_job_result(session, settings=settings, job=row)
        assert again is not None and again.id == version["id"]
        session.commit()
    assert client.get("/api/models", headers=alice.headers).json()["total"] == 1


def _user(session: Any, account: Account) -> Any:
    from loraforge.db.models import User

    user = session.get(User, account.id)
    assert user is not None
    return user


def test_suffix_names_and_demo_model_resolution(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    job = _succeeded_job(client, app, settings, alice, suffix="my bot!")
    assert _model_of_job(client, alice, job["id"])["name"] == f"ft:demo-tiny:my-bot:{job['id']}"
    with app.state.db.session() as session:
        served = resolution.resolve_for_inference(
            session, settings=settings, actor=_user(session, alice), name="demo-tiny"
        )
        assert served.base == str(demo_model) and served.adapter is None and served.model_id is None
    assert results.fine_tuned_name("x" * 300, "s", 7).endswith(":s:7")
    # As long as a name may be (so renaming a model to its own name is never refused).
    assert len(results.fine_tuned_name("x" * 300, "s", 7)) == NAME_MAX_LENGTH


def test_versions_tags_notes_and_download(
    api: Api, client: TestClient, app: FastAPI, settings: Settings
) -> None:
    alice = api.account("alice")
    job = _succeeded_job(client, app, settings, alice)
    model = _model_of_job(client, alice, job["id"])
    version_id = model["current_version_id"]
    listing = client.get(f"/api/models/{model['id']}/versions", headers=alice.headers)
    assert listing.status_code == 200 and [v["id"] for v in listing.json()["items"]] == [version_id]

    patched = client.patch(
        f"/api/models/versions/{version_id}",
        json={"tags": ["best", " best ", "eval-ok"], "notes": "good on the demo set"},
        headers=alice.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["tags"] == ["best", "eval-ok"] and patched.json()["notes"] == "good on the demo set"
    assert client.get(f"/api/models/versions/{version_id}", headers=alice.headers).json()["tags"] == [
        "best",
        "eval-ok",
    ]
    assert_error(
        client.patch(f"/api/models/versions/{version_id}", json={"tags": ["x" * 65]}, headers=alice.headers),
        422,
    )
    assert_error(
        client.patch(f"/api/models/versions/{version_id}", json={"colour": "red"}, headers=alice.headers), 422
    )

    response = client.get(f"/api/models/versions/{version_id}/download", headers=alice.headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/gzip"
    stem = f"ft-demo-tiny-lf-{job['id']}-v1"
    assert f'filename="{stem}.tar.gz"' in response.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as tar:
        names = tar.getnames()
    assert f"{stem}/adapter_config.json" in names and f"{stem}/adapter_model.safetensors" in names

    # a second job of hers becomes version 2 (and current); a job that did not succeed is refused
    second = _succeeded_job(client, app, settings, alice, register=False)
    created = client.post(
        f"/api/models/{model['id']}/versions", json={"job_id": second["id"]}, headers=alice.headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["number"] == 2 and created.json()["is_current"] is True
    assert created.json()["source_job"]["id"] == second["id"]
    draft = create_job(client, alice, tiny_spec(second["dataset"]["id"]))
    assert_error(
        client.post(
            f"/api/models/{model['id']}/versions", json={"job_id": draft["id"]}, headers=alice.headers
        ),
        409,
        "job_not_succeeded",
        "body.job_id",
    )
    numbers = [
        v["number"]
        for v in client.get(f"/api/models/{model['id']}/versions", headers=alice.headers).json()["items"]
    ]
    assert numbers == [2, 1]
    actions = {e["action"] for e in api.audit(api.admin(), action="model.")}
    assert {"model.registered", "model.version_updated", "model.version_created"} <= actions


def test_register_base_models(
    api: Api, client: TestClient, settings: Settings, demo_model_cache: Path
) -> None:
    admin = api.admin()
    bob = api.account("bob")
    local = client.post(
        "/api/models",
        json={"name": "tiny-base", "source": "local", "ref": str(demo_model_cache), "shared": True},
        headers=admin.headers,
    )
    assert local.status_code == 201, local.text
    body = local.json()
    assert body["kind"] == "base" and body["source"] == "local" and body["shared"] is True
    info = body["current_version"]["info"]
    assert info["architecture"] and info["context_length"] > 0 and info["param_count"] > 0
    assert isinstance(info["chat_template"], bool) and info["chat_template"]
    assert body["current_version"]["weights"] == "full" and body["current_version"]["status"] == "ready"

    # researchers may not name server folders; a hub id is fine (a record only, with download false)
    assert_error(
        client.post(
            "/api/models",
            json={"name": "mine", "source": "local", "ref": str(demo_model_cache)},
            headers=bob.headers,
        ),
        403,
    )
    hub = client.post(
        "/api/models",
        json={"name": "qwen-small", "source": "hub", "ref": "Qwen/Qwen2.5-0.5B", "download": False},
        headers=bob.headers,
    )
    assert hub.status_code == 201, hub.text
    assert (
        hub.json()["source_ref"] == "Qwen/Qwen2.5-0.5B" and hub.json()["current_version"]["status"] == "ready"
    )
    assert_error(
        client.post(
            "/api/models", json={"name": "bad", "source": "hub", "ref": "../etc"}, headers=bob.headers
        ),
        422,
        "invalid_hub_id",
        "body.ref",
    )
    # a folder outside the import roots reads like a missing one
    assert_error(
        client.post(
            "/api/models", json={"name": "x", "source": "local", "ref": "/etc"}, headers=admin.headers
        ),
        422,
        "invalid_model_path",
        "body.ref",
    )

    # names: unique platform-wide, not demo-tiny, not ft:, not @v<n>
    assert_error(
        client.post(
            "/api/models",
            json={"name": "qwen-small", "source": "hub", "ref": "Qwen/Qwen2.5-0.5B", "download": False},
            headers=admin.headers,
        ),
        409,
        "model_name_taken",
        "body.name",
    )
    for bad in ("demo-tiny", "ft:x:y:1", "name@v3", "-dash", "sp ace"):
        assert_error(
            client.post(
                "/api/models",
                json={"name": bad, "source": "hub", "ref": "Qwen/Qwen2.5-0.5B", "download": False},
                headers=bob.headers,
            ),
            422,
            "invalid_model_name",
            "body.name",
        )

    # the hub record resolves to the hub id for inference
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        served = resolution.resolve_for_inference(
            session, settings=settings, actor=_user(session, bob), name="qwen-small"
        )
        assert served.base == "Qwen/Qwen2.5-0.5B" and served.adapter is None
        shared = resolution.resolve_for_inference(
            session, settings=settings, actor=_user(session, bob), name="tiny-base"
        )
        assert Path(shared.base) == demo_model_cache.resolve()
    # everyone sees the shared one, read-only
    seen = client.get("/api/models", headers=bob.headers).json()
    assert {m["name"]: m["can_edit"] for m in seen["items"]} == {"tiny-base": False, "qwen-small": True}


def test_access_owner_shared_stranger_and_staff(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    mallory = api.account("mallory")
    operator = api.account("olga", role="operator")
    admin = api.admin()
    job = _succeeded_job(client, app, settings, alice)
    model = _model_of_job(client, alice, job["id"])
    mid, vid = model["id"], model["current_version_id"]

    # a stranger: 404 everywhere, and the model is not in their list or /v1 resolution
    for method, url, kwargs in (
        ("get", f"/api/models/{mid}", {}),
        ("patch", f"/api/models/{mid}", {"json": {"shared": True}}),
        ("delete", f"/api/models/{mid}", {}),
        ("get", f"/api/models/{mid}/versions", {}),
        ("post", f"/api/models/{mid}/versions", {"json": {"job_id": job["id"]}}),
        ("get", f"/api/models/versions/{vid}", {}),
        ("patch", f"/api/models/versions/{vid}", {"json": {"notes": "x"}}),
        ("get", f"/api/models/versions/{vid}/download", {}),
        ("post", f"/api/models/versions/{vid}/merge", {}),
    ):
        assert_error(getattr(client, method)(url, headers=mallory.headers, **kwargs), 404)
    assert client.get("/api/models", headers=mallory.headers).json()["total"] == 0
    with app.state.db.session() as session:
        with pytest.raises(NotFound):
            resolution.resolve_for_inference(
                session, settings=settings, actor=_user(session, mallory), name=model["name"]
            )
        assert [
            m.name
            for m in resolution.visible_models(session, settings=settings, actor=_user(session, mallory))
        ] == ["demo-tiny"]

    # an operator reads everything but changes nothing
    assert client.get(f"/api/models/{mid}", headers=operator.headers).json()["can_edit"] is False
    assert client.get("/api/models", headers=operator.headers).json()["total"] == 1
    assert_error(
        client.patch(f"/api/models/{mid}", json={"shared": True}, headers=operator.headers), 403, "not_owner"
    )

    # shared: readable by everyone, still read-only for them
    shared = client.patch(f"/api/models/{mid}", json={"shared": True}, headers=alice.headers)
    assert shared.status_code == 200 and shared.json()["shared"] is True
    assert client.get(f"/api/models/{mid}", headers=mallory.headers).status_code == 200
    assert client.get(f"/api/models/versions/{vid}", headers=mallory.headers).status_code == 200
    assert client.get(f"/api/models/versions/{vid}/download", headers=mallory.headers).status_code == 200
    assert_error(
        client.patch(f"/api/models/{mid}", json={"name": "mine"}, headers=mallory.headers), 403, "not_owner"
    )
    assert_error(client.delete(f"/api/models/{mid}", headers=mallory.headers), 403, "not_owner")
    assert_error(
        client.patch(f"/api/models/versions/{vid}", json={"notes": "x"}, headers=mallory.headers), 403
    )
    assert_error(client.post(f"/api/models/versions/{vid}/merge", headers=mallory.headers), 403, "not_owner")
    with app.state.db.session() as session:
        served = resolution.resolve_for_inference(
            session, settings=settings, actor=_user(session, mallory), name=model["name"]
        )
        assert served.owner_id == alice.id

    # the owner renames (a taken or invalid name is refused); an admin may change anyone's model
    renamed = client.patch(
        f"/api/models/{mid}", json={"name": "alice-bot", "description": "d"}, headers=alice.headers
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "alice-bot"
    assert_error(
        client.patch(f"/api/models/{mid}", json={"name": "ft:x"}, headers=alice.headers),
        422,
        field="body.name",
    )
    assert (
        client.patch(f"/api/models/{mid}", json={"shared": False}, headers=admin.headers).status_code == 200
    )
    assert client.delete(f"/api/models/{mid}", headers=admin.headers).status_code == 204
    assert_error(client.get(f"/api/models/{mid}", headers=alice.headers), 404, "model_not_found")
    actions = [e["action"] for e in api.audit(admin, action="model.")]
    assert "model.updated" in actions and "model.deleted" in actions


def test_delete_refused_while_a_job_uses_it_and_files_removed_after(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    job = _succeeded_job(client, app, settings, alice)
    model = _model_of_job(client, alice, job["id"])
    output = settings.runs_dir / str(job["id"]) / "output"

    # a queued job trains on top of the registered model: the name is pinned to its version
    user_job = create_job(
        client, alice, tiny_spec(job["dataset"]["id"], model_name_or_path=model["name"]), start=True
    )
    assert user_job["spec"]["model_name_or_path"] == f"{model['name']}@v1"
    assert_error(client.delete(f"/api/models/{model['id']}", headers=alice.headers), 409, "model_in_use")
    assert_error(
        client.patch(f"/api/models/{model['id']}", json={"name": "renamed"}, headers=alice.headers),
        409,
        "model_in_use",
    )
    # the engine gets base folder + adapter folder
    with app.state.db.session() as session:
        spec = {"model_name_or_path": user_job["spec"]["model_name_or_path"]}
        job_specs.apply_registered_models(session, settings=settings, spec=spec)
        assert spec == {
            "model_name_or_path": str(settings.models_dir / "demo-tiny"),
            "adapter_name_or_path": str(output),
        }
    assert client.post(f"/api/jobs/{user_job['id']}/cancel", headers=alice.headers).status_code == 200

    # retention keeps the output a version needs, however old the job
    with app.state.db.session() as session:
        row = session.get(Job, job["id"])
        assert row is not None and retention.needed_by_model(session, row) is True
        row.finished_at = row.finished_at - timedelta(days=400) if row.finished_at else None
        session.commit()
        assert retention.sweep(session, settings=settings.model_copy(update={"retention_days": 7.0})) == []
    assert (output / "adapter_config.json").is_file()
    assert (
        client.delete(
            f"/api/models/{model['id']}", params={"files": "true"}, headers=alice.headers
        ).status_code
        == 204
    )
    assert not output.exists()
    with app.state.db.session() as session:
        row = session.get(Job, job["id"])
        assert row is not None and retention.needed_by_model(session, row) is False


def test_job_specs_with_registered_models_and_validation_dataset(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    bob = api.account("bob")
    job = _succeeded_job(client, app, settings, alice)
    model = _model_of_job(client, alice, job["id"])
    dataset_id = job["dataset"]["id"]

    def post(account: Account, spec: dict[str, Any]) -> Any:
        return client.post("/api/jobs", json={"name": "j", "spec": spec}, headers=account.headers)

    # a private model is not bob's: his spec is checked like any other name (':' is no hub id)
    bob_data = sample_dataset(client, bob)
    assert_error(
        post(bob, tiny_spec(bob_data["id"], model_name_or_path=model["name"])),
        422,
        "invalid_spec",
        "body.spec.model_name_or_path",
    )
    # an adapter cannot be combined with another adapter; a full model is no adapter
    assert_error(
        post(
            alice, tiny_spec(dataset_id, model_name_or_path=model["name"], adapter_name_or_path=model["name"])
        ),
        422,
        "invalid_spec",
        "body.spec.adapter_name_or_path",
    )
    # users cannot submit merge jobs themselves
    assert_error(post(alice, tiny_spec(dataset_id, stage="merge")), 422, "invalid_spec", "body.spec.stage")

    # validation_dataset: pinned, rows written as data/validation.jsonl
    other = sample_dataset(client, alice)
    created = post(alice, tiny_spec(dataset_id, validation_dataset=other["id"]))
    assert created.status_code == 201, created.text
    spec = created.json()["spec"]
    assert spec["validation_dataset"] == other["id"]
    assert spec["validation_dataset_version"] == other["current_version_id"]
    assert_error(
        post(alice, tiny_spec(dataset_id, validation_dataset=999_999)),
        422,
        "invalid_spec",
        "body.spec.validation_dataset",
    )
    assert_error(
        post(bob, tiny_spec(bob_data["id"], validation_dataset=other["id"])),
        422,
        "invalid_spec",
        "body.spec.validation_dataset",
    )
    assert_error(
        post(
            alice, tiny_spec(dataset_id, validation_dataset=other["id"], validation_dataset_version=1_000_000)
        ),
        422,
        "invalid_spec",
        "body.spec.validation_dataset_version",
    )
    assert_error(
        post(alice, tiny_spec(dataset_id, validation_dataset_version=other["current_version_id"])),
        422,
        "invalid_spec",
        "body.spec.validation_dataset_version",
    )

    from loraforge.db.models import DatasetVersion

    run_dir = settings.runs_dir / "probe"
    with app.state.db.session() as session:
        version = session.get(DatasetVersion, spec["dataset_version"])
        validation = session.get(DatasetVersion, spec["validation_dataset_version"])
        assert version is not None and validation is not None
        engine = job_specs.engine_spec(
            settings, spec=spec, version=version, run_dir=run_dir, validation=validation
        )
    assert engine["validation_file"] == str(run_dir / "data" / "validation.jsonl")
    assert "validation_dataset" not in engine and "validation_dataset_version" not in engine
    rows = (run_dir / "data" / "validation.jsonl").read_text(encoding="utf-8").splitlines()
    from loraforge.datastore import paths

    normalized = paths.normalized_path(other["id"], other["current_version_id"], data_dir=settings.data_dir)
    assert len(rows) == len(normalized.read_text(encoding="utf-8").splitlines()) > 0
    assert all("messages" in json.loads(r) for r in rows)


def test_not_ready_versions_are_refused(
    api: Api, client: TestClient, app: FastAPI, settings: Settings
) -> None:
    alice = api.account("alice")
    job = _succeeded_job(client, app, settings, alice)
    model = _model_of_job(client, alice, job["id"])
    from loraforge.db.models import ModelVersion

    with app.state.db.session() as session:
        version = session.get(ModelVersion, model["current_version_id"])
        assert version is not None
        version.status = "downloading"
        session.commit()
        with pytest.raises(Conflict) as refused:
            resolution.resolve_for_inference(
                session, settings=settings, actor=_user(session, alice), name=model["name"]
            )
        assert refused.value.code == "model_not_ready"
    assert_error(
        client.get(f"/api/models/versions/{model['current_version_id']}/download", headers=alice.headers),
        409,
        "model_files_missing",
    )


def test_merge_request_queues_a_job_and_a_cancelled_merge_reads_failed(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    job = _succeeded_job(client, app, settings, alice)
    model = _model_of_job(client, alice, job["id"])
    started = client.post(f"/api/models/versions/{model['current_version_id']}/merge", headers=alice.headers)
    assert started.status_code == 201, started.text
    merge_job, merging = started.json()["job"], started.json()["version"]
    assert merge_job["status"] == "queued" and merge_job["dataset_id"] is None
    assert merge_job["spec"]["model_name_or_path"] == f"{model['name']}@v1"
    assert merging["status"] == "merging" and merging["parent_version_id"] == model["current_version_id"]
    assert merging["source_job"]["id"] == merge_job["id"]
    # the merge job pins the model; the merging version is no adapter and not servable yet
    assert_error(client.delete(f"/api/models/{model['id']}", headers=alice.headers), 409, "model_in_use")
    assert_error(client.post(f"/api/models/versions/{merging['id']}/merge", headers=alice.headers), 409)
    assert_error(client.get(f"/api/models/versions/{merging['id']}/download", headers=alice.headers), 409)
    with app.state.db.session() as session:
        with pytest.raises(Conflict):
            resolution.resolve_for_inference(
                session, settings=settings, actor=_user(session, alice), name=f"{model['name']}@v2"
            )
        # what the scheduler hands the engine: base and adapter folders, output in the run
        row = session.get(Job, merge_job["id"])
        assert row is not None
        spec = merge.merge_engine_spec(session, settings=settings, job=row, run_dir=settings.runs_dir / "m")
    assert spec["stage"] == "merge" and spec["model_name_or_path"] == str(settings.models_dir / "demo-tiny")
    assert spec["adapter_name_or_path"] == str(settings.runs_dir / str(job["id"]) / "output")

    assert client.post(f"/api/jobs/{merge_job['id']}/cancel", headers=alice.headers).status_code == 200
    failed = client.get(f"/api/models/versions/{merging['id']}", headers=alice.headers).json()
    assert failed["status"] == "failed" and failed["is_current"] is False
    actions = {e["action"] for e in api.audit(api.admin(), action="model.")}
    assert "model.merge_requested" in actions


def test_hub_download_runs_in_the_background(
    api: Api, client: TestClient, settings: Settings, demo_model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub cannot be reached here: the download itself is replaced by a copy of the demo model;
    the thread, the version states and the detection are the real ones."""

    def fake_download(hub_id: str, target: Path) -> None:
        if hub_id == "org/broken":
            raise OSError("hub unreachable")
        shutil.copytree(demo_model_cache, target)

    monkeypatch.setattr(model_fetch, "_download", fake_download)
    bob = api.account("bob")

    def wait_status(model_id: int) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            version: dict[str, Any] = client.get(f"/api/models/{model_id}", headers=bob.headers).json()[
                "current_version"
            ]
            if version["status"] != "downloading":
                return version
            time.sleep(0.05)
        raise AssertionError("still downloading")

    ok = client.post(
        "/api/models", json={"name": "fetched", "source": "hub", "ref": "org/tiny"}, headers=bob.headers
    )
    assert ok.status_code == 201 and ok.json()["current_version"]["status"] in {"downloading", "ready"}
    version = wait_status(ok.json()["id"])
    assert version["status"] == "ready" and version["info"]["param_count"] > 0 and version["size_bytes"] > 0
    folder = settings.models_dir / str(ok.json()["id"]) / "versions" / str(version["id"])
    assert (folder / "config.json").is_file()
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        served = resolution.resolve_for_inference(
            session, settings=settings, actor=_user(session, bob), name="fetched"
        )
    assert served.base == str(folder)

    broken = client.post(
        "/api/models", json={"name": "broken", "source": "hub", "ref": "org/broken"}, headers=bob.headers
    )
    failed = wait_status(broken.json()["id"])
    assert failed["status"] == "failed" and "hub unreachable" in failed["info"]["error"]

    # deleting with files removes the downloaded folder
    assert (
        client.delete(
            f"/api/models/{ok.json()['id']}", params={"files": "true"}, headers=bob.headers
        ).status_code
        == 204
    )
    assert not folder.exists()


def test_the_scheduler_registers_in_the_success_transaction(
    api: Api,
    client: TestClient,
    app: FastAPI,
    settings: Settings,
    demo_model: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scheduler's own path (events.jsonl -> succeeded) with a recording executor; a registry
    failure rolls the tick back once, then the job is finalised without a model."""
    from job_helpers import RecordingExecutor

    from loraforge.services.jobs.scheduler import Scheduler

    scheduler = Scheduler(settings, app.state.db, executor=RecordingExecutor())

    def finish(account: Account) -> int:
        dataset = sample_dataset(client, account)
        job = create_job(client, account, tiny_spec(dataset["id"]), start=True)
        scheduler.tick()
        run = settings.runs_dir / str(job["id"])
        (run / "output").mkdir(parents=True)
        (run / "output" / "adapter_config.json").write_text("{}", encoding="utf-8")
        lines = [
            {"seq": 1, "type": "status", "ts": 1.0, "status": "training"},
            {"seq": 2, "type": "status", "ts": 2.0, "status": "succeeded"},
        ]
        (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")
        return int(job["id"])

    alice = api.account("alice")
    job_id = finish(alice)
    scheduler.tick()
    assert client.get(f"/api/jobs/{job_id}", headers=alice.headers).json()["status"] == "succeeded"
    assert _model_of_job(client, alice, job_id)["name"] == f"ft:demo-tiny:lf:{job_id}"

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("registry broken")

    monkeypatch.setattr(results, "register_job_result", broken)
    bob = api.account("bob")
    job_id = finish(bob)
    scheduler.tick()
    assert client.get(f"/api/jobs/{job_id}", headers=bob.headers).json()["status"] != "succeeded"
    scheduler.tick()
    assert client.get(f"/api/jobs/{job_id}", headers=bob.headers).json()["status"] == "succeeded"
    assert client.get("/api/models", params={"job_id": job_id}, headers=bob.headers).json()["items"] == []
