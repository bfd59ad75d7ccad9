"""Jobs through the REST API without running the engine: validation, access, drafts, clone, delete."""

from __future__ import annotations

import pytest
from api_helpers import Api, assert_error
from job_helpers import create_job, sample_dataset, tiny_spec

from loraforge.services.jobs.reads import downsample
from loraforge.settings import Settings

HUB_MODEL = "Qwen/Qwen2.5-0.5B"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.scheduler_enabled = False  # nothing launches: these tests look at the API alone
    return settings


def _post(api: Api, account, spec, **body):  # type: ignore[no-untyped-def]
    return api.client.post("/api/jobs", json={"name": "j", "spec": spec, **body}, headers=account.headers)


def test_validation_errors_name_the_field(api: Api):
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)
    assert_error(
        _post(api, alice, tiny_spec(dataset["id"], learning_rate=-1)),
        422,
        "invalid_spec",
        "body.spec.learning_rate",
    )
    error = assert_error(
        _post(api, alice, tiny_spec(dataset["id"], learnin_rate=1e-4)),
        422,
        "invalid_spec",
        "body.spec.learnin_rate",
    )
    assert "learning_rate" in error["details"][0]["message"]  # did-you-mean
    spec = tiny_spec(dataset["id"])
    del spec["dataset"]
    assert_error(_post(api, alice, spec), 422, "invalid_spec", "body.spec.dataset")
    assert_error(
        _post(api, alice, tiny_spec(dataset["id"], dataset_version=999_999)),
        422,
        field="body.spec.dataset_version",
    )
    assert_error(
        _post(api, alice, tiny_spec(dataset["id"], eval_dataset=["/etc/passwd"])),
        422,
        field="body.spec.eval_dataset",
    )
    assert_error(
        api.client.post("/api/jobs", json={"spec": {}}, headers=alice.headers),
        422,
        "validation_error",
        "body.name",
    )


def test_researcher_cannot_name_a_server_path_or_run_remote_code(api: Api):
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)
    for path in ("/etc", "../../secrets", "./x", "~/models", "/tmp/model"):
        response = _post(api, alice, tiny_spec(dataset["id"], model_name_or_path=path))
        assert_error(response, 422, "invalid_spec", "body.spec.model_name_or_path")
    assert_error(
        _post(api, alice, tiny_spec(dataset["id"], adapter_name_or_path="/srv/adapter")),
        422, field="body.spec.adapter_name_or_path",
    )  # fmt: skip
    assert_error(
        _post(api, alice, tiny_spec(dataset["id"], model_name_or_path=HUB_MODEL, trust_remote_code=True)),
        422, field="body.spec.trust_remote_code",
    )  # fmt: skip
    assert _post(api, alice, tiny_spec(dataset["id"], model_name_or_path=HUB_MODEL)).status_code == 201
    assert _post(api, alice, tiny_spec(dataset["id"])).status_code == 201  # demo-tiny
    # Admins (and operators) may train from a server path.
    admin = api.admin()
    own = sample_dataset(api.client, admin)
    assert _post(api, admin, tiny_spec(own["id"], model_name_or_path="/srv/models/base")).status_code == 201


def test_another_user_cannot_see_start_stop_or_delete_a_job(api: Api):
    alice, bob = api.account("alice"), api.account("bob")
    dataset = sample_dataset(api.client, alice)
    job = create_job(api.client, alice, tiny_spec(dataset["id"]))
    # Bob may not use Alice's dataset either.
    assert_error(_post(api, bob, tiny_spec(dataset["id"])), 422, field="body.spec.dataset")
    base = f"/api/jobs/{job['id']}"
    for method, path in [
        ("GET", base), ("POST", f"{base}/start"), ("POST", f"{base}/stop"), ("POST", f"{base}/cancel"),
        ("POST", f"{base}/clone"), ("DELETE", base), ("GET", f"{base}/events"), ("GET", f"{base}/metrics"),
        ("GET", f"{base}/logs"),
    ]:  # fmt: skip
        assert_error(api.client.request(method, path, headers=bob.headers), 404, "job_not_found")
    listed = api.client.get("/api/jobs", headers=bob.headers).json()
    assert listed["total"] == 0 and listed["items"] == []
    assert api.client.get(base, headers=alice.headers).json()["status"] == "draft"

    # Operators may read and cancel others' jobs, but not start or delete them.
    operator = api.account("olga", role="operator")
    assert api.client.get(base, headers=operator.headers).status_code == 200
    assert_error(api.client.post(f"{base}/start", headers=operator.headers), 403, "not_owner")
    assert_error(api.client.delete(base, headers=operator.headers), 403, "not_owner")
    assert api.client.post(f"{base}/start", headers=alice.headers).json()["status"] == "queued"
    cancelled = api.client.post(f"{base}/cancel", headers=operator.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    everyone = api.client.get("/api/jobs", params={"owner_id": alice.id}, headers=operator.headers).json()
    assert [j["id"] for j in everyone["items"]] == [job["id"]]


def test_draft_start_cancel_clone_delete_and_dataset_pin(api: Api):
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)
    draft = create_job(api.client, alice, tiny_spec(dataset["id"]), name="draft")
    assert draft["status"] == "draft" and draft["spec"]["dataset_version"] == dataset["current_version_id"]
    queued = create_job(api.client, alice, tiny_spec(dataset["id"]), start=True, name="queued")
    assert queued["status"] == "queued" and queued["queued_at"]

    # A queued job pins its dataset: deleting the dataset is refused.
    assert_error(
        api.client.delete(f"/api/datasets/{dataset['id']}", headers=alice.headers), 409, "dataset_in_use"
    )
    assert_error(api.client.delete(f"/api/jobs/{queued['id']}", headers=alice.headers), 409, "job_active")
    assert_error(
        api.client.post(f"/api/jobs/{queued['id']}/start", headers=alice.headers), 409, "invalid_transition"
    )

    queue = api.client.get("/api/queue", headers=alice.headers).json()
    assert [(q["position"], q["job"]["id"]) for q in queue["queued"]] == [(1, queued["id"])]

    stopped = api.client.post(f"/api/jobs/{queued['id']}/stop", headers=alice.headers).json()
    assert stopped["status"] == "cancelled"
    assert_error(
        api.client.post(f"/api/jobs/{queued['id']}/cancel", headers=alice.headers), 409, "invalid_transition"
    )

    clone = api.client.post(f"/api/jobs/{queued['id']}/clone", headers=alice.headers)
    assert clone.status_code == 201, clone.text
    assert clone.json()["status"] == "draft" and clone.json()["spec"] == queued["spec"]

    statuses = api.client.get(
        "/api/jobs", params={"status": ["draft"], "page_size": 1}, headers=alice.headers
    ).json()
    assert statuses["total"] == 2 and len(statuses["items"]) == 1 and statuses["page_size"] == 1

    for job_id in (draft["id"], queued["id"], clone.json()["id"]):
        assert api.client.delete(f"/api/jobs/{job_id}", headers=alice.headers).status_code == 204
    assert api.client.delete(f"/api/datasets/{dataset['id']}", headers=alice.headers).status_code == 204
    actions = {entry["action"] for entry in api.audit(api.admin(), action="job.")}
    assert actions == {"job.created", "job.started", "job.stopped", "job.deleted"}


def test_downsampling_keeps_the_extremes():
    points = [{"step": i, "loss": 1.0} for i in range(1, 10_001)]
    points[4321]["loss"] = 50.0
    points[7777]["loss"] = -3.0
    kept = downsample(points, 100)
    assert len(kept) <= 100
    assert kept[0]["step"] == 1 and kept[-1]["step"] == 10_000
    losses = [p["loss"] for p in kept]
    assert 50.0 in losses and -3.0 in losses
    assert [p["step"] for p in kept] == sorted(p["step"] for p in kept)
    assert downsample(points[:10], 100) == points[:10]
