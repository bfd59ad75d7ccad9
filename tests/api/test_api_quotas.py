"""Quotas: storage and GPU-hours refused at submit (naming the quota and the numbers), the per-user
running cap an admin overrides, and `wait` mode (the job stays queued until the admin raises the quota).

No GPU exists here: the node's GPUs are faked with `settings.gpu_count` (LORAFORGE_GPU_COUNT) as in
test_api_jobs_gpus.py, and the scheduler ticks by hand with an executor that records launches.
Prior GPU consumption is an inserted `job_usage` row (what accounting writes for a finished attempt);
the real figures of a real run are checked in test_api_usage_run.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from job_helpers import HUB_MODEL, RecordingExecutor, get_job, sample_dataset, tiny_spec

from loraforge.db.base import utcnow
from loraforge.db.models import JobUsage
from loraforge.db.session import Database
from loraforge.services.jobs.scheduler import Scheduler
from loraforge.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.scheduler_enabled = False
    settings.max_running_jobs = 8
    settings.max_running_jobs_per_user = 1
    settings.gpu_count = 2
    return settings


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.sqlalchemy_url)
    yield db
    db.dispose()


def _spec(dataset_id: int, devices: Any) -> dict[str, Any]:
    return tiny_spec(dataset_id, model_name_or_path=HUB_MODEL, devices=devices)


def _submit(api: Api, who: Account, spec: dict[str, Any], *, start: bool = True, name: str = "job") -> Any:
    return api.client.post(
        "/api/jobs", json={"name": name, "spec": spec, "start": start}, headers=who.headers
    )


def _set_quota(api: Api, user_id: int, **values: Any) -> dict[str, Any]:
    response = api.client.put(f"/api/admin/users/{user_id}/quota", json=values, headers=api.admin().headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _used_gpu_hours(database: Database, owner_id: int, hours: float, *, months_ago: int = 0) -> None:
    """What accounting writes for a finished one-GPU attempt of `hours` (the job itself long deleted)."""
    started = utcnow() - timedelta(days=32 * months_ago)
    with database.session() as session:
        session.add(
            JobUsage(
                job_id=None, attempt=1, owner_id=owner_id, month=started.strftime("%Y-%m"),
                started_at=started, finished_at=started + timedelta(hours=hours),
                wall_seconds=hours * 3600, gpu_count=1, gpu_seconds=hours * 3600,
            )
        )  # fmt: skip
        session.commit()


def test_storage_quota_refuses_to_queue_and_names_the_numbers(api: Api, settings: Settings):
    alice, bob = api.account("alice"), api.account("bob")
    dataset = sample_dataset(api.client, alice)["id"]
    view = _set_quota(api, alice.id, storage_bytes=1)
    assert view["storage_bytes"] == 1 and view["effective"]["storage_bytes"] == 1
    assert view["defaults"] == {"gpu_hours_per_month": None, "max_running_jobs": 1, "storage_bytes": None}

    error = assert_error(
        _submit(api, alice, _spec(dataset, "cpu")), 403, "quota_exceeded", field="body.quota.storage_bytes"
    )
    used = api.client.get("/api/usage/me", headers=alice.headers).json()["storage_bytes"]
    assert used > 1 and f"{used:,} of 1 bytes" in error["message"] and "storage quota" in error["message"]
    # A draft is not refused (it uses nothing yet); queueing it is.
    draft = _submit(api, alice, _spec(dataset, "cpu"), start=False)
    assert draft.status_code == 201, draft.text
    started = api.client.post(f"/api/jobs/{draft.json()['id']}/start", headers=alice.headers)
    assert_error(started, 403, "quota_exceeded", field="body.quota.storage_bytes")
    assert get_job(api.client, alice, draft.json()["id"])["status"] == "draft"

    # Another user is not affected; and the admin's change is audited.
    bob_dataset = sample_dataset(api.client, bob)["id"]
    assert _submit(api, bob, _spec(bob_dataset, "cpu")).status_code == 201
    changes = api.audit(api.admin(), action="user.quota_changed")
    assert changes[0]["target_id"] == str(alice.id)
    assert changes[0]["details"]["to"]["storage_bytes"] == 1

    # Back to the default (no limit): the draft starts.
    assert _set_quota(api, alice.id)["storage_bytes"] is None
    assert api.client.post(f"/api/jobs/{draft.json()['id']}/start", headers=alice.headers).status_code == 200

    # A resume queues work too: over the quota it is refused the same way.
    job_id = draft.json()["id"]
    assert api.client.post(f"/api/jobs/{job_id}/cancel", headers=alice.headers).status_code == 200
    _set_quota(api, alice.id, storage_bytes=1)
    resumed = api.client.post(f"/api/jobs/{job_id}/resume", json={"checkpoint": None}, headers=alice.headers)
    assert_error(resumed, 403, "quota_exceeded", field="body.quota.storage_bytes")


def test_gpu_hours_quota_counts_this_months_usage_and_only_refuses_gpu_jobs(
    api: Api, settings: Settings, database: Database
):
    settings.quota_gpu_hours_per_month = 1.0
    alice, bob = api.account("alice"), api.account("bob")
    dataset = sample_dataset(api.client, alice)["id"]
    bob_dataset = sample_dataset(api.client, bob)["id"]
    _used_gpu_hours(database, alice.id, 1.5)
    _used_gpu_hours(database, bob.id, 40.0, months_ago=1)  # last month's does not count

    error = assert_error(
        _submit(api, alice, _spec(dataset, [0])),
        403,
        "quota_exceeded",
        field="body.quota.gpu_hours_per_month",
    )
    assert "GPU-hours quota exceeded: 1.50 of 1 GPU-hours used" in error["message"]
    assert_error(_submit(api, alice, _spec(dataset, "auto")), 403, "quota_exceeded")  # auto = 1 GPU here
    assert _submit(api, alice, _spec(dataset, "cpu")).status_code == 201  # needs no GPU
    assert _submit(api, bob, _spec(bob_dataset, [0, 1])).status_code == 201

    me = api.client.get("/api/usage/me", headers=alice.headers).json()
    assert me["totals"]["gpu_hours"] == 1.5 and me["quota"]["gpu_hours_per_month"] == 1.0
    assert me["quota"]["action"] == "refuse"

    # An admin's override replaces the default for alice only.
    assert _set_quota(api, alice.id, gpu_hours_per_month=2.0)["effective"]["gpu_hours_per_month"] == 2.0
    assert _submit(api, alice, _spec(dataset, [0])).status_code == 201


def test_running_cap_override_is_honoured_by_admission(api: Api, settings: Settings, database: Database):
    alice, bob = api.account("alice"), api.account("bob")
    ids: dict[str, list[int]] = {"alice": [], "bob": []}
    for who, name in ((alice, "alice"), (bob, "bob")):
        dataset = sample_dataset(api.client, who)["id"]
        for i in range(3):
            response = _submit(api, who, _spec(dataset, "cpu"), name=f"{name}-{i}")
            assert response.status_code == 201, response.text
            ids[name].append(response.json()["id"])
    assert _set_quota(api, alice.id, max_running_jobs=2)["effective"]["max_running_jobs"] == 2

    executor = RecordingExecutor()
    Scheduler(settings, database, executor).tick()
    # Alice's override lets two of hers run; bob keeps the default of one.
    assert executor.launched == [*ids["alice"][:2], ids["bob"][0]]
    assert get_job(api.client, alice, ids["alice"][2])["status"] == "queued"


def test_wait_mode_holds_the_job_until_the_admin_raises_the_quota(
    api: Api, settings: Settings, database: Database
):
    settings.quota_action = "wait"
    settings.quota_gpu_hours_per_month = 1.0
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)["id"]
    _used_gpu_hours(database, alice.id, 3.0)
    settings.max_running_jobs_per_user = 8

    gpu_job = _submit(api, alice, _spec(dataset, [0]), name="gpu")
    assert gpu_job.status_code == 201, gpu_job.text  # accepted: it waits instead
    cpu_job = _submit(api, alice, _spec(dataset, "cpu"), name="cpu")
    executor = RecordingExecutor()
    scheduler = Scheduler(settings, database, executor)
    scheduler.tick()
    scheduler.tick()
    assert executor.launched == [cpu_job.json()["id"]]  # the GPU quota holds GPU jobs only
    assert get_job(api.client, alice, gpu_job.json()["id"])["status"] == "queued"
    assert api.client.get("/api/usage/me", headers=alice.headers).json()["quota"]["action"] == "wait"

    _set_quota(api, alice.id, gpu_hours_per_month=5.0)
    scheduler.tick()
    assert executor.launched == [cpu_job.json()["id"], gpu_job.json()["id"]]
    assert get_job(api.client, alice, gpu_job.json()["id"])["devices"] == [0]

    # Storage holds every job of the user's, and the admin's change lets it go at once.
    _set_quota(api, alice.id, gpu_hours_per_month=5.0, storage_bytes=1)
    held = _submit(api, alice, _spec(dataset, "cpu"), name="held")
    assert held.status_code == 201, held.text
    scheduler.tick()
    assert get_job(api.client, alice, held.json()["id"])["status"] == "queued"
    _set_quota(api, alice.id, gpu_hours_per_month=5.0)
    scheduler.tick()
    assert executor.launched[-1] == held.json()["id"]


def test_quota_routes_are_admin_only_and_check_the_user(api: Api, settings: Settings):
    alice, olga = api.account("alice"), api.account("olga", role="operator")
    for who in (alice, olga):
        assert_error(
            api.client.get(f"/api/admin/users/{alice.id}/quota", headers=who.headers), 403, "forbidden"
        )
        response = api.client.put(
            f"/api/admin/users/{alice.id}/quota", json={"max_running_jobs": 50}, headers=who.headers
        )
        assert_error(response, 403, "forbidden")
    assert_error(api.client.get(f"/api/admin/users/{alice.id}/quota"), 401)
    admin = api.admin()
    assert_error(
        api.client.get("/api/admin/users/987654/quota", headers=admin.headers), 404, "user_not_found"
    )
    response = api.client.put(
        f"/api/admin/users/{alice.id}/quota", json={"storage_bytes": -1}, headers=admin.headers
    )
    assert_error(response, 422, field="body.storage_bytes")
    response = api.client.put(f"/api/admin/users/{alice.id}/quota", json={"disk": 1}, headers=admin.headers)
    assert_error(response, 422)
    view = api.client.get(f"/api/admin/users/{alice.id}/quota", headers=admin.headers).json()
    assert view["max_running_jobs"] is None and view["effective"]["max_running_jobs"] == 1
