"""Jobs end to end with a real engine subprocess on the tiny demo model and the sample dataset."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from api_helpers import Api, assert_error
from job_helpers import create_job, get_job, sample_dataset, tiny_spec, wait_for

from loraforge.settings import Settings

pytestmark = pytest.mark.slow


def test_job_runs_to_success_with_events_metrics_and_output(api: Api, settings: Settings, demo_model: Path):
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)
    job = create_job(api.client, alice, tiny_spec(dataset["id"]), start=True, name="first")
    assert job["status"] == "queued"
    assert job["dataset_version_id"] == dataset["current_version_id"]

    done = wait_for(api.client, alice, job["id"], {"succeeded"})
    assert done["progress"] == 1.0 and done["finished_at"] and done["started_at"]

    events = api.client.get(f"/api/jobs/{job['id']}/events", headers=alice.headers).json()
    seqs = [e["seq"] for e in events["items"]]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1
    statuses = [e["status"] for e in events["items"] if e["type"] == "status"]
    assert "training" in statuses and statuses[-1] == "succeeded"
    later = api.client.get(f"/api/jobs/{job['id']}/events", params={"after": seqs[-2]}, headers=alice.headers)
    assert [e["seq"] for e in later.json()["items"]] == [seqs[-1]]

    metrics = api.client.get(f"/api/jobs/{job['id']}/metrics", headers=alice.headers).json()
    assert [p["step"] for p in metrics["points"]] == [1, 2, 3, 4]
    assert all(p["loss"] is not None for p in metrics["points"])

    run_dir = settings.runs_dir / str(job["id"])
    assert (run_dir / "output" / "adapter_config.json").exists()
    assert (run_dir / "engine.log").exists()
    logs = api.client.get(f"/api/jobs/{job['id']}/logs", params={"tail": 50}, headers=alice.headers).json()
    assert any("succeeded" in line for line in logs["lines"])

    # Its output became a registered model; the job cannot be deleted from under the model.
    found = api.client.get("/api/models", params={"job_id": job["id"]}, headers=alice.headers).json()
    assert [m["name"] for m in found["items"]] == [f"ft:demo-tiny:lf:{job['id']}"]
    refused = api.client.delete(f"/api/jobs/{job['id']}", headers=alice.headers)
    assert_error(refused, 409, "job_output_in_use")
    assert (run_dir / "output" / "adapter_config.json").exists()

    # Once the model (record only) is gone, a finished job may be deleted, with its run directory.
    model_id = found["items"][0]["id"]
    assert api.client.delete(f"/api/models/{model_id}", headers=alice.headers).status_code == 204
    assert api.client.delete(f"/api/jobs/{job['id']}", headers=alice.headers).status_code == 204
    assert not run_dir.exists()
    assert api.client.get(f"/api/jobs/{job['id']}", headers=alice.headers).status_code == 404
    actions = [entry["action"] for entry in api.audit(api.admin(), action="job.")]
    assert {"job.created", "job.started", "job.deleted"} <= set(actions)


def _running(api: Api, demo_model: Path, steps: int = 100_000) -> tuple[object, dict]:
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)
    job = create_job(api.client, alice, tiny_spec(dataset["id"], max_steps=steps), start=True)
    wait_for(api.client, alice, job["id"], {"running"})
    return alice, get_job(api.client, alice, job["id"])


def _pid(settings: Settings, job_id: int) -> int:
    from loraforge.db.models import Job
    from loraforge.db.session import Database

    database = Database(settings.sqlalchemy_url)
    try:
        with database.session() as session:
            job = session.get(Job, job_id)
            assert job is not None and job.pid is not None
            return job.pid
    finally:
        database.dispose()


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_cancel_a_running_job_kills_the_engine(api: Api, settings: Settings, demo_model: Path):
    alice, job = _running(api, demo_model)
    pid = _pid(settings, job["id"])
    response = api.client.post(f"/api/jobs/{job['id']}/cancel", headers=alice.headers)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert _gone(pid)
    time.sleep(2 * settings.scheduler_interval_seconds)
    assert get_job(api.client, alice, job["id"])["status"] == "cancelled"  # type: ignore[arg-type]


def test_kill_9_of_the_engine_fails_the_job_with_a_diagnosis(api: Api, settings: Settings, demo_model: Path):
    alice, job = _running(api, demo_model)
    os.kill(_pid(settings, job["id"]), signal.SIGKILL)
    failed = wait_for(api.client, alice, job["id"], {"failed"}, timeout=10)  # type: ignore[arg-type]
    assert failed["exit_code"] == -signal.SIGKILL
    assert failed["error"]["code"] == "host_oom"
    assert "SIGKILL" in failed["error"]["message"]
    assert isinstance(failed["error"]["last_log_lines"], list) and failed["error"]["last_log_lines"]


@pytest.mark.engine_heavy
def test_stop_a_running_job_gracefully(api: Api, settings: Settings, demo_model: Path):
    alice, job = _running(api, demo_model)
    response = api.client.post(f"/api/jobs/{job['id']}/stop", headers=alice.headers)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "stopping"
    stopped = wait_for(api.client, alice, job["id"], {"stopped"}, timeout=60)  # type: ignore[arg-type]
    assert stopped["finished_at"] and stopped["error"]["code"] == "stopped"
    events = api.client.get(f"/api/jobs/{job['id']}/events", headers=alice.headers).json()["items"]  # type: ignore[attr-defined]
    assert events[-1]["type"] == "status" and events[-1]["status"] == "cancelled"
    assert _gone(_pid(settings, job["id"]))
