"""A job runs only on what its owner may still read: access is checked again when a draft is started,
when a job resumes, and when a queued job is launched (the scheduler, driven by hand here with an
executor that records launches and runs nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from api_helpers import Account, Api, assert_error
from job_helpers import HUB_MODEL, RecordingExecutor, create_job, get_job, sample_dataset, tiny_spec

from loraforge.db.session import Database
from loraforge.services.jobs.scheduler import Scheduler
from loraforge.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.scheduler_enabled = False  # the test drives `tick()` itself
    settings.max_running_jobs_per_user = 2
    return settings


def _share_model(api: Api, owner: Account, name: str) -> int:
    """A registered hub model (a record only: nothing is downloaded), shared with everyone."""
    response = api.client.post(
        "/api/models",
        json={"name": name, "source": "hub", "ref": HUB_MODEL, "download": False, "shared": True},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    model_id: int = response.json()["id"]
    return model_id


def _set_shared(api: Api, owner: Account, model_id: int, shared: bool) -> None:
    response = api.client.patch(f"/api/models/{model_id}", json={"shared": shared}, headers=owner.headers)
    assert response.status_code == 200, response.text


def _bobs_job_on(api: Api, bob: Account, model: str, *, start: bool) -> int:
    dataset = sample_dataset(api.client, bob)
    job = create_job(api.client, bob, tiny_spec(dataset["id"], model_name_or_path=model), start=start)
    assert job["spec"]["model_name_or_path"] == f"{model}@v1"  # pinned when created
    return int(job["id"])


def test_starting_a_draft_on_a_model_no_longer_shared_is_refused(api: Api) -> None:
    alice, bob = api.account("alice"), api.account("bob")
    model_id = _share_model(api, alice, "alice-base")
    job_id = _bobs_job_on(api, bob, "alice-base", start=False)

    _set_shared(api, alice, model_id, False)
    refused = api.client.post(f"/api/jobs/{job_id}/start", headers=bob.headers)
    assert "alice-base@v1" in assert_error(refused, 403, "model_not_accessible")["message"]
    assert get_job(api.client, bob, job_id)["status"] == "draft"

    # Shared again: the same draft starts.
    _set_shared(api, alice, model_id, True)
    started = api.client.post(f"/api/jobs/{job_id}/start", headers=bob.headers)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "queued"


def test_a_queued_job_whose_model_was_unshared_fails_at_launch_without_training(
    api: Api, settings: Settings
) -> None:
    alice, bob = api.account("alice"), api.account("bob")
    model_id = _share_model(api, alice, "alice-base")
    job_id = _bobs_job_on(api, bob, "alice-base", start=True)
    _set_shared(api, alice, model_id, False)  # while bob's job waits in the queue

    executor = RecordingExecutor()
    database = Database(settings.sqlalchemy_url)
    try:
        Scheduler(settings, database, executor).tick()
    finally:
        database.dispose()
    assert executor.launched == []
    failed = get_job(api.client, bob, job_id)
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "model_not_accessible"
    assert not (settings.runs_dir / str(job_id) / "spec.json").exists()  # nothing prepared for the engine


def test_resuming_on_a_model_no_longer_shared_is_refused(api: Api, settings: Settings) -> None:
    alice, bob = api.account("alice"), api.account("bob")
    model_id = _share_model(api, alice, "alice-base")
    job_id = _bobs_job_on(api, bob, "alice-base", start=True)
    cancelled = api.client.post(f"/api/jobs/{job_id}/cancel", headers=bob.headers)
    assert cancelled.status_code == 200, cancelled.text
    # A checkpoint as the Trainer leaves it (trainer_state.json is written last).
    checkpoint = settings.runs_dir / str(job_id) / "checkpoints" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 2}), encoding="utf-8")

    _set_shared(api, alice, model_id, False)
    refused = api.client.post(f"/api/jobs/{job_id}/resume", json={}, headers=bob.headers)
    assert_error(refused, 403, "model_not_accessible")
    assert get_job(api.client, bob, job_id)["status"] == "cancelled"

    _set_shared(api, alice, model_id, True)
    resumed = api.client.post(f"/api/jobs/{job_id}/resume", json={}, headers=bob.headers)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "queued"


def test_a_dataset_read_through_a_role_that_was_taken_away_stops_the_job(api: Api) -> None:
    """Staff may train on anyone's dataset; once demoted, the job they drafted does not start."""
    alice = api.account("alice")
    olga = api.account("olga", role="operator")
    dataset = sample_dataset(api.client, alice)
    job = create_job(api.client, olga, tiny_spec(dataset["id"]), start=False)

    admin = api.admin()
    demoted = api.client.patch(
        f"/api/admin/users/{olga.id}", json={"role": "researcher"}, headers=admin.headers
    )
    assert demoted.status_code == 200, demoted.text
    refused = api.client.post(f"/api/jobs/{job['id']}/start", headers=olga.headers)
    assert_error(refused, 403, "dataset_not_accessible")


def test_the_owner_of_the_model_and_hub_models_are_unaffected(api: Api, settings: Settings) -> None:
    alice = api.account("alice")
    model_id = _share_model(api, alice, "alice-base")
    _set_shared(api, alice, model_id, False)  # private: still alice's own
    own = _bobs_job_on(api, alice, "alice-base", start=False)
    hub = create_job(
        api.client, alice, tiny_spec(sample_dataset(api.client, alice)["id"], model_name_or_path=HUB_MODEL)
    )["id"]
    for job_id in (own, hub):
        response = api.client.post(f"/api/jobs/{job_id}/start", headers=alice.headers)
        assert response.status_code == 200, response.text

    executor = RecordingExecutor()
    database = Database(settings.sqlalchemy_url)
    try:
        Scheduler(settings, database, executor).tick()
    finally:
        database.dispose()
    assert sorted(executor.launched) == sorted([own, hub])
    spec = json.loads(Path(settings.runs_dir / str(own) / "spec.json").read_text(encoding="utf-8"))
    assert spec["model_name_or_path"] == HUB_MODEL  # the registered record resolved for the engine
