"""Retention: old unpinned finished jobs lose checkpoints and outputs (history stays), pinned ones keep
them; pin/unpin access; the storage report for operators and admins; an admin's sweep on demand."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from fastapi import FastAPI
from fastapi.testclient import TestClient
from job_helpers import create_job, sample_dataset, tiny_spec
from sqlalchemy import update

from loraforge.db.base import utcnow
from loraforge.db.models import Job, JobStatus
from loraforge.services.jobs import retention
from loraforge.services.jobs.states import transition
from loraforge.settings import Settings

KEPT = ("spec.json", "events.jsonl", "engine.log")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"scheduler_enabled": False, "retention_days": 7.0})


def _finished_job(
    client: TestClient,
    app: FastAPI,
    settings: Settings,
    account: Account,
    *,
    days_ago: float,
    name: str = "job",
) -> dict[str, Any]:
    """A succeeded job that finished `days_ago` days ago, with run files like the engine leaves."""
    dataset = sample_dataset(client, account)
    job = create_job(client, account, tiny_spec(dataset["id"]), name=name)
    # files first: the background sweep may look at the job as soon as it is final
    run = settings.runs_dir / str(job["id"])
    (run / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors").write_bytes(b"w" * 4000)
    (run / "output").mkdir()
    (run / "output" / "adapter_model.safetensors").write_bytes(b"o" * 1000)
    for name_ in KEPT:
        (run / name_).write_text("{}\n", encoding="utf-8")
    with app.state.db.session() as session:
        row = session.get(Job, job["id"])
        assert row is not None
        for target in (JobStatus.queued, JobStatus.starting, JobStatus.running, JobStatus.succeeded):
            transition(session, row, target)
        session.execute(
            update(Job).where(Job.id == job["id"]).values(finished_at=utcnow() - timedelta(days=days_ago))
        )
        session.commit()
    return job


def _files_removed_at(app: FastAPI, job_id: int) -> Any:
    with app.state.db.session() as session:
        row = session.get(Job, job_id)
        assert row is not None
        return row.files_removed_at


def test_sweep_removes_old_unpinned_jobs_files_only(
    api: Api, client: TestClient, app: FastAPI, settings: Settings
) -> None:
    alice = api.account("alice")
    admin = api.admin()
    old = _finished_job(client, app, settings, alice, days_ago=8, name="old")
    pinned = _finished_job(client, app, settings, alice, days_ago=30, name="pinned")
    recent = _finished_job(client, app, settings, alice, days_ago=1, name="recent")
    draft = create_job(client, alice, tiny_spec(sample_dataset(client, alice)["id"]), name="draft")
    assert client.post(f"/api/jobs/{pinned['id']}/pin", headers=alice.headers).status_code == 200

    response = client.post("/api/admin/retention/run", headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["job_id"] for r in body["removed"]] == [old["id"]]
    assert body["removed"][0]["removed"] == ["checkpoints", "output"]
    assert body["bytes_freed"] == 5000

    run = settings.runs_dir / str(old["id"])
    assert not (run / "checkpoints").exists() and not (run / "output").exists()
    assert all((run / name).exists() for name in KEPT)  # the history stays readable
    assert _files_removed_at(app, old["id"]) is not None
    for kept in (pinned, recent):
        assert (settings.runs_dir / str(kept["id"]) / "checkpoints" / "checkpoint-2").is_dir()
        assert _files_removed_at(app, kept["id"]) is None
    assert _files_removed_at(app, draft["id"]) is None
    # the job's history is still served
    assert client.get(f"/api/jobs/{old['id']}", headers=alice.headers).status_code == 200

    entries = api.audit(admin, action="job.files_removed")
    assert len(entries) == 1 and entries[0]["target_id"] == str(old["id"])
    assert entries[0]["actor_username"] is None and entries[0]["details"]["bytes_freed"] == 5000
    assert api.audit(admin, action="retention.run")[0]["actor_username"] == admin.username

    # a second run finds nothing; unpinning makes the pinned one due
    assert client.post("/api/admin/retention/run", headers=admin.headers).json()["removed"] == []
    assert client.post(f"/api/jobs/{pinned['id']}/unpin", headers=alice.headers).status_code == 200
    again = client.post("/api/admin/retention/run", headers=admin.headers).json()
    assert [r["job_id"] for r in again["removed"]] == [pinned["id"]]


def test_retention_zero_keeps_forever_and_no_model_needs_files_yet(
    api: Api, client: TestClient, app: FastAPI, settings: Settings
) -> None:
    alice = api.account("alice")
    old = _finished_job(client, app, settings, alice, days_ago=400)
    forever = settings.model_copy(update={"retention_days": 0.0})
    with app.state.db.session() as session:
        assert retention.sweep(session, settings=forever) == []
        row = session.get(Job, old["id"])
        assert row is not None and retention.needed_by_model(session, row) is False
    assert (settings.runs_dir / str(old["id"]) / "output").is_dir()


def test_a_run_dir_link_out_of_the_runs_folder_is_not_followed(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    alice = api.account("alice")
    job = _finished_job(client, app, settings, alice, days_ago=10)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.bin").write_bytes(b"k")
    output = settings.runs_dir / str(job["id"]) / "output"
    for child in output.iterdir():
        child.unlink()
    output.rmdir()
    output.symlink_to(outside, target_is_directory=True)
    removed = client.post("/api/admin/retention/run", headers=api.admin().headers).json()["removed"]
    assert [r["job_id"] for r in removed] == [job["id"]]
    assert (outside / "keep.bin").exists() and not output.exists()


def test_pin_access_and_audit(api: Api, client: TestClient, app: FastAPI, settings: Settings) -> None:
    alice = api.account("alice")
    bob = api.account("bob")
    operator = api.account("olga", role="operator")
    job = _finished_job(client, app, settings, alice, days_ago=0)
    assert_error(client.post(f"/api/jobs/{job['id']}/pin", headers=bob.headers), 404)
    assert_error(client.post(f"/api/jobs/{job['id']}/pin", headers=operator.headers), 403, "not_owner")
    assert_error(client.post("/api/jobs/99999/pin", headers=alice.headers), 404)
    assert_error(client.post(f"/api/jobs/{job['id']}/pin"), 401)
    pinned = client.post(f"/api/jobs/{job['id']}/pin", headers=alice.headers)
    assert pinned.status_code == 200 and pinned.json()["pinned"] is True
    with app.state.db.session() as session:
        row = session.get(Job, job["id"])
        assert row is not None and row.pinned is True
    assert client.post(f"/api/jobs/{job['id']}/unpin", headers=alice.headers).status_code == 200
    actions = [e["action"] for e in api.audit(api.admin(), action="job.")]
    assert "job.pinned" in actions and "job.unpinned" in actions


def test_storage_report_for_staff_only(
    api: Api, client: TestClient, app: FastAPI, settings: Settings
) -> None:
    alice = api.account("alice")
    bob = api.account("bob")
    operator = api.account("olga", role="operator")
    big = _finished_job(client, app, settings, alice, days_ago=0, name="big")
    (settings.runs_dir / str(big["id"]) / "output" / "more.bin").write_bytes(b"x" * 10_000)
    small = _finished_job(client, app, settings, bob, days_ago=0, name="small")

    assert_error(client.get("/api/admin/storage", headers=alice.headers), 403)
    assert_error(client.post("/api/admin/retention/run", headers=alice.headers), 403)
    assert_error(client.post("/api/admin/retention/run", headers=operator.headers), 403)  # admins only

    response = client.get("/api/admin/storage?largest=1", headers=operator.headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["areas"]["runs"] >= 2 * 5000 + 10_000
    assert report["areas"]["datasets"] > 0
    assert report["free_bytes"] > 0 and report["retention_days"] == 7.0
    assert [j["job_id"] for j in report["largest_jobs"]] == [big["id"]]
    users = {u["username"]: u for u in report["users"]}
    assert users["alice"]["runs_bytes"] > users["bob"]["runs_bytes"] > 0
    assert users["alice"]["jobs"] == 1 and users["alice"]["datasets_bytes"] > 0
    assert users["alice"]["total_bytes"] == users["alice"]["runs_bytes"] + users["alice"]["datasets_bytes"]
    assert client.get("/api/admin/storage", headers=api.admin().headers).status_code == 200
    del small


def test_the_background_task_sweeps_by_itself(settings: Settings) -> None:
    """The app's housekeeping task runs the sweep every `retention_interval_seconds`."""
    import time

    from loraforge.app import create_app

    app = create_app(settings.model_copy(update={"retention_interval_seconds": 0.2}))
    with TestClient(app) as client:
        alice = Api(client).account("alice")
        old = _finished_job(client, app, app.state.settings, alice, days_ago=8)
        deadline = time.monotonic() + 30
        while _files_removed_at(app, old["id"]) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _files_removed_at(app, old["id"]) is not None
        assert not (settings.runs_dir / str(old["id"]) / "checkpoints").exists()
