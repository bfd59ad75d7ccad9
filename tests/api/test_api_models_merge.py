"""The registry end to end with the real engine: a tiny LoRA job succeeds and is registered in the same
transaction; its adapter is merged by a queued merge job into a new full version whose folder loads;
that registered model then trains again on the merged folder (which proves the folder loads), with a
validation dataset, named by its registry name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from fastapi.testclient import TestClient
from job_helpers import create_job, sample_dataset, tiny_spec, wait_for

from loraforge.services.models import files as model_files
from loraforge.services.models import resolution
from loraforge.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.engine_heavy]


def _only_model(client: TestClient, account: Account, job_id: int) -> dict[str, Any]:
    items = client.get("/api/models", params={"job_id": job_id}, headers=account.headers).json()["items"]
    assert len(items) == 1, items
    model: dict[str, Any] = items[0]
    return model


def test_train_register_merge_and_train_on_the_registered_model(
    api: Api, client: TestClient, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    mallory = api.account("mallory")
    dataset = sample_dataset(client, alice)
    job = create_job(client, alice, tiny_spec(dataset["id"], max_steps=2), start=True, name="tiny")
    wait_for(client, alice, job["id"], {"succeeded"})

    # registered in the transaction that made the job succeeded
    model = _only_model(client, alice, job["id"])
    assert model["name"] == f"ft:demo-tiny:lf:{job['id']}" and model["kind"] == "finetuned"
    adapter = model["current_version"]
    assert adapter["weights"] == "adapter" and adapter["source_job"]["status"] == "succeeded"
    assert adapter["dataset"]["version_id"] == dataset["current_version_id"]
    assert adapter["metrics"]["steps"] == 2 and adapter["metrics"]["final_train_loss"] is not None
    output = settings.runs_dir / str(job["id"]) / "output"
    assert (output / "adapter_config.json").is_file()

    # a stranger cannot merge it; the owner can
    assert_error(client.post(f"/api/models/versions/{adapter['id']}/merge", headers=mallory.headers), 404)
    started = client.post(f"/api/models/versions/{adapter['id']}/merge", headers=alice.headers)
    assert started.status_code == 201, started.text
    merge_job, merging = started.json()["job"], started.json()["version"]
    assert merge_job["status"] == "queued" and merge_job["spec"]["stage"] == "merge"
    assert merging["status"] == "merging" and merging["weights"] == "full" and merging["number"] == 2
    assert merging["parent_version_id"] == adapter["id"] and merging["is_current"] is False
    assert_error(client.post(f"/api/models/versions/{merging['id']}/merge", headers=alice.headers), 409)

    wait_for(client, alice, merge_job["id"], {"succeeded"})
    merged = client.get(f"/api/models/versions/{merging['id']}", headers=alice.headers).json()
    assert merged["status"] == "ready" and merged["is_current"] is True
    assert merged["source_job"]["id"] == merge_job["id"] and merged["base"]["name"] == "demo-tiny"
    folder = settings.runs_dir / str(merge_job["id"]) / "output"
    assert (folder / "config.json").is_file() and list(folder.glob("*.safetensors"))
    assert merged["info"]["param_count"] == model_files.param_count(demo_model.resolve())
    with api.client.app.state.db.session() as session:  # type: ignore[attr-defined]
        from loraforge.db.models import User

        user = session.get(User, alice.id)
        assert user is not None
        served = resolution.resolve_for_inference(session, settings=settings, actor=user, name=model["name"])
        assert served.base == str(folder) and served.adapter is None
        first = resolution.resolve_for_inference(
            session, settings=settings, actor=user, name=f"{model['name']}@v1"
        )
        assert first.adapter == output

    # train on the registered model by name (current = the merged full version), validating on a dataset
    other = sample_dataset(client, alice)
    spec = tiny_spec(
        dataset["id"], max_steps=2, model_name_or_path=model["name"], validation_dataset=other["id"]
    )
    again = create_job(client, alice, spec, start=True, name="second")
    assert again["spec"]["model_name_or_path"] == f"{model['name']}@v2"
    done = wait_for(client, alice, again["id"], {"succeeded"}, timeout=180)
    engine_spec = (settings.runs_dir / str(done["id"]) / "spec.json").read_text(encoding="utf-8")
    assert str(folder) in engine_spec and "validation.jsonl" in engine_spec
    second = _only_model(client, alice, again["id"])
    assert second["name"] == f"ft:{model['name']}:lf:{again['id']}"
    lineage = second["current_version"]
    assert lineage["base"]["version_id"] == merging["id"] and lineage["base"]["model_id"] == model["id"]
    assert lineage["metrics"].get("final_eval_loss") is not None

    # delete with files: the job output the version pointed at goes too
    assert (
        client.delete(
            f"/api/models/{second['id']}", params={"files": "true"}, headers=alice.headers
        ).status_code
        == 204
    )
    assert not (settings.runs_dir / str(again["id"]) / "output").exists()
