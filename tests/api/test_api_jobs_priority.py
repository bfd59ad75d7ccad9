"""Priorities and queue order: operators and admins change them, researchers cannot; admission follows.

The scheduler loop is off (`scheduler_enabled = False`); the test drives `tick()` with an executor that
records launches (the jobs name a hub model that is never downloaded)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_helpers import Account, Api, assert_error
from job_helpers import HUB_MODEL, RecordingExecutor, create_job, sample_dataset, tiny_spec

from loraforge.db.session import Database
from loraforge.services.jobs.scheduler import Scheduler
from loraforge.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.scheduler_enabled = False
    settings.max_running_jobs = 3
    settings.max_running_jobs_per_user = 10
    return settings


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.sqlalchemy_url)
    yield db
    db.dispose()


def _queue_ids(api: Api, account: Account) -> list[int]:
    response = api.client.get("/api/queue", headers=account.headers)
    assert response.status_code == 200, response.text
    queued = response.json()["queued"]
    assert [q["position"] for q in queued] == sorted(q["position"] for q in queued)
    return [q["job"]["id"] for q in queued]


def _jobs(api: Api, account: Account, n: int, *, start: bool = True) -> list[int]:
    dataset = sample_dataset(api.client, account)
    spec = tiny_spec(dataset["id"], model_name_or_path=HUB_MODEL)
    return [create_job(api.client, account, spec, start=start, name=f"j{i}")["id"] for i in range(n)]


def test_priority_reorder_and_admission_order_with_many_jobs(
    api: Api, settings: Settings, database: Database
):
    alice, operator, admin = api.account("alice"), api.account("olga", role="operator"), api.admin()
    ids = _jobs(api, alice, 12)
    assert _queue_ids(api, admin) == ids

    # Priority: operators and admins only, within -1000..1000.
    response = api.client.post(f"/api/jobs/{ids[9]}/priority", json={"priority": 7}, headers=operator.headers)
    assert response.status_code == 200 and response.json()["priority"] == 7
    api.client.post(f"/api/jobs/{ids[5]}/priority", json={"priority": -3}, headers=admin.headers)
    assert _queue_ids(api, admin) == [ids[9], *ids[:5], *ids[6:9], *ids[10:], ids[5]]
    assert_error(
        api.client.post(f"/api/jobs/{ids[0]}/priority", json={"priority": 5}, headers=alice.headers),
        403,
        "forbidden",
    )
    assert_error(
        api.client.post(f"/api/jobs/{ids[0]}/priority", json={"priority": 1001}, headers=admin.headers),
        422,
        field="body.priority",
    )

    # Reorder: the listed jobs swap among the positions they hold; the others stay where they are.
    before = _queue_ids(api, admin)  # [9, 0, 1, 2, 3, 4, 6, 7, 8, 10, 11, 5]
    wanted = [ids[11], ids[2], ids[9]]  # now at positions 11, 4 and 1 (indexes 10, 3, 0)
    response = api.client.post("/api/queue/reorder", json={"job_ids": wanted}, headers=operator.headers)
    assert response.status_code == 200, response.text
    after = [q["job"]["id"] for q in response.json()["queued"]]
    assert after == _queue_ids(api, admin)
    expected = list(before)
    for slot, job_id in zip(sorted(before.index(j) for j in wanted), wanted, strict=True):
        expected[slot] = job_id
    assert after == expected
    assert after[0] == ids[11] and after[3] == ids[2] and after[10] == ids[9]

    # Admission follows the queue (global cap 3 here).
    executor = RecordingExecutor()
    Scheduler(settings, database, executor).tick()
    assert executor.launched == after[:3]
    assert _queue_ids(api, admin) == after[3:]

    actions = [entry["action"] for entry in api.audit(admin, action="")]
    assert "job.priority_changed" in actions and "queue.reordered" in actions


def test_reorder_refuses_jobs_that_are_not_queued_and_researchers(api: Api, settings: Settings):
    alice, admin = api.account("alice"), api.admin()
    queued = _jobs(api, alice, 2)
    (draft,) = _jobs(api, alice, 1, start=False)
    error = assert_error(
        api.client.post("/api/queue/reorder", json={"job_ids": [queued[1], draft]}, headers=admin.headers),
        422,
        "job_not_queued",
        field="body.job_ids.1",
    )
    assert str(draft) in error["message"]
    assert_error(
        api.client.post("/api/queue/reorder", json={"job_ids": [queued[1], 999_999]}, headers=admin.headers),
        422,
        "job_not_queued",
        field="body.job_ids.1",
    )
    assert_error(
        api.client.post(
            "/api/queue/reorder", json={"job_ids": [queued[1], queued[1]]}, headers=admin.headers
        ),
        422,
        "duplicate_job",
        field="body.job_ids.1",
    )
    assert_error(
        api.client.post("/api/queue/reorder", json={"job_ids": queued[::-1]}, headers=alice.headers),
        403,
        "forbidden",
    )
    assert _queue_ids(api, admin) == queued  # nothing half-done

    # A draft's priority may be set (it applies once started); a finished job's may not.
    response = api.client.post(f"/api/jobs/{draft}/priority", json={"priority": 2}, headers=admin.headers)
    assert response.status_code == 200 and response.json()["priority"] == 2
    api.client.post(f"/api/jobs/{queued[0]}/cancel", headers=alice.headers)
    assert_error(
        api.client.post(f"/api/jobs/{queued[0]}/priority", json={"priority": 2}, headers=admin.headers),
        409,
        "invalid_transition",
    )


def test_priority_of_another_users_job_is_not_found_for_researchers(api: Api, settings: Settings):
    alice, bob = api.account("alice"), api.account("bob")
    (job,) = _jobs(api, alice, 1)
    # A researcher is refused by role before anything about the job is revealed.
    assert_error(
        api.client.post(f"/api/jobs/{job}/priority", json={"priority": 1}, headers=bob.headers),
        403,
        "forbidden",
    )
    assert_error(
        api.client.post("/api/jobs/999999/priority", json={"priority": 1}, headers=api.admin().headers),
        404,
        "job_not_found",
    )
