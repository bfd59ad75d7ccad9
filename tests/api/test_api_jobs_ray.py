"""The Ray executor against a real Ray head on 127.0.0.1 (one per module), through the REST API.

The engine runs as a Ray job (same entrypoint, same run directory: head and server share this machine),
its events come from events.jsonl as with the local executor, and its log is mirrored from Ray's job logs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api
from job_helpers import create_job, get_job, sample_dataset, tiny_spec, wait_for
from ray_head import RayHead, free_port, ray_head

from loraforge.executors.base import LOG_FILE, ProcessRef
from loraforge.executors.ray import RayExecutor
from loraforge.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.engine_heavy]

RAY_TIMEOUT_S = 240.0  # a Ray job starts a worker, then the engine imports torch: slower than local


@pytest.fixture(scope="module")
def head() -> Iterator[RayHead]:
    with ray_head() as started:
        yield started


@pytest.fixture
def ray_address(head: RayHead) -> str:
    return head.address


@pytest.fixture
def settings(settings: Settings, ray_address: str) -> Settings:
    """The suite's settings with the Ray executor (a test may parametrize `ray_address` to a bad one)."""
    return settings.model_copy(update={"executor": "ray", "ray_address": ray_address})


def _job_row(settings: Settings, job_id: int) -> dict[str, Any]:
    from loraforge.db.models import Job
    from loraforge.db.session import Database

    database = Database(settings.sqlalchemy_url)
    try:
        with database.session() as session:
            job = session.get(Job, job_id)
            assert job is not None
            return {"external_id": job.external_id, "pid": job.pid, "executor": job.executor}
    finally:
        database.dispose()


def _ray_client(head: RayHead) -> Any:
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(head.address)


def _wait_log(api: Api, account: Account, job_id: int, needle: str) -> list[str]:
    """The log endpoint's lines once one contains `needle` (the mirror runs about once a second)."""
    deadline = time.monotonic() + 60
    lines: list[str] = []
    while time.monotonic() < deadline:
        response = api.client.get(f"/api/jobs/{job_id}/logs", params={"tail": 500}, headers=account.headers)
        lines = response.json()["lines"]
        if any(needle in line for line in lines):
            return lines
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} never reached the mirrored log: {lines[-20:]}")


def _ray_status(head: RayHead, submission_id: str, statuses: set[str]) -> Any:
    client = _ray_client(head)
    deadline = time.monotonic() + 60
    info = client.get_job_info(submission_id)
    while time.monotonic() < deadline and str(info.status.value) not in statuses:
        time.sleep(0.2)
        info = client.get_job_info(submission_id)
    return info


def test_ray_job_succeeds_with_events_metrics_and_mirrored_log(
    api: Api, settings: Settings, demo_model: Path, head: RayHead, monkeypatch: pytest.MonkeyPatch
):
    # The server's environment is not the engine's: a secret in it must not reach Ray's runtime_env.
    monkeypatch.setenv("LORAFORGE_PROBE_SECRET", "do-not-ship")
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)
    job = create_job(api.client, alice, tiny_spec(dataset["id"]), start=True, name="on ray")

    done = wait_for(api.client, alice, job["id"], {"succeeded"}, timeout=RAY_TIMEOUT_S)
    assert done["progress"] == 1.0 and done["finished_at"] and done["started_at"]
    row = _job_row(settings, job["id"])
    assert row["external_id"].startswith(f"loraforge-{job['id']}-")

    events = api.client.get(f"/api/jobs/{job['id']}/events", headers=alice.headers).json()["items"]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert "training" in statuses and statuses[-1] == "succeeded"
    metrics = api.client.get(f"/api/jobs/{job['id']}/metrics", headers=alice.headers).json()
    assert [p["step"] for p in metrics["points"]] == [1, 2, 3, 4]
    assert (settings.runs_dir / str(job["id"]) / "output" / "adapter_config.json").exists()

    # Ray saw the job as ours: a finished entrypoint, the engine's variables only, the stop grace set.
    info = _ray_status(head, row["external_id"], {"SUCCEEDED"})
    assert str(info.status.value) == "SUCCEEDED" and info.driver_exit_code == 0
    assert "loraforge.engine run" in info.entrypoint
    env_vars = info.runtime_env["env_vars"]
    assert "LORAFORGE_PROBE_SECRET" not in env_vars and "PATH" not in env_vars
    assert env_vars["PYTHONUNBUFFERED"] == "1" and env_vars["CUDA_VISIBLE_DEVICES"] == ""
    assert env_vars["RAY_JOB_STOP_WAIT_TIME_S"] == str(int(settings.job_stop_timeout_seconds))
    assert info.metadata["loraforge_job_id"] == str(job["id"])

    # The engine's output reached engine.log through the mirror, byte for byte as Ray has it.
    lines = _wait_log(api, alice, job["id"], "[status] succeeded")
    assert any("training" in line for line in lines)
    ray_log = _ray_client(head).get_job_logs(row["external_id"])
    log_file = settings.runs_dir / str(job["id"]) / LOG_FILE
    deadline = time.monotonic() + 30
    while log_file.read_text(encoding="utf-8") != ray_log and time.monotonic() < deadline:
        time.sleep(0.2)  # the last sync follows Ray's SUCCEEDED, which may come after our final event
    assert log_file.read_text(encoding="utf-8") == ray_log


def test_ray_job_stopped_through_rest_ends_stopped(
    api: Api, settings: Settings, demo_model: Path, head: RayHead
):
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)
    job = create_job(api.client, alice, tiny_spec(dataset["id"], max_steps=100_000), start=True)
    wait_for(api.client, alice, job["id"], {"running"}, timeout=RAY_TIMEOUT_S)

    response = api.client.post(f"/api/jobs/{job['id']}/stop", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "stopping"
    stopped = wait_for(api.client, alice, job["id"], {"stopped"}, timeout=120)
    assert stopped["finished_at"]
    events = api.client.get(f"/api/jobs/{job['id']}/events", headers=alice.headers).json()["items"]
    assert events[-1]["type"] == "status" and events[-1]["status"] == "cancelled"
    # Ray ran our stop: the job there is STOPPED (SIGTERM, the engine checkpointed and exited).
    info = _ray_status(head, _job_row(settings, job["id"])["external_id"], {"STOPPED"})
    assert str(info.status.value) == "STOPPED"
    assert any((settings.runs_dir / str(job["id"]) / "checkpoints").glob("checkpoint-*"))


@pytest.mark.parametrize("ray_address", [f"http://127.0.0.1:{free_port()}"])
def test_unreachable_ray_address_fails_the_launch_readably(api: Api, demo_model: Path, ray_address: str):
    alice = api.account("alice")
    dataset = sample_dataset(api.client, alice)
    job = create_job(api.client, alice, tiny_spec(dataset["id"]), start=True)
    started = time.monotonic()
    deadline = started + 60
    current = get_job(api.client, alice, job["id"])
    while current["status"] not in {"failed", "succeeded", "cancelled"} and time.monotonic() < deadline:
        time.sleep(0.1)
        current = get_job(api.client, alice, job["id"])
    assert current["status"] == "failed", current
    assert current["error"]["code"] == "launch_failed"
    assert f"cannot reach the Ray Jobs API at {ray_address}" in current["error"]["message"]


def test_reattach_after_a_restart_mirrors_the_log_and_reports_the_exit(settings: Settings, head: RayHead):
    """A new executor (as after a server restart) finds a Ray job from its stored ref: Ray's status
    and exit code, and the log mirrored into the run directory named in the job's metadata."""
    run_dir = settings.runs_dir / "991"
    run_dir.mkdir(parents=True)  # no spec.json: the engine fails at once with a message
    earlier = b"an earlier attempt's output\n"  # a resumed job's log goes on in the same file
    (run_dir / LOG_FILE).write_bytes(earlier)
    first = RayExecutor(settings)
    ref = first.launch(job_id=991, run_dir=run_dir, env={"PATH": "/usr/bin", "SECRET": "x"})
    assert ref.external_id and ref.external_id.startswith("loraforge-991-") and ref.pid == 0
    deadline = time.monotonic() + RAY_TIMEOUT_S
    while first.state(ref).alive and time.monotonic() < deadline:
        time.sleep(0.2)
    ended = first.state(ref)
    assert not ended.alive and ended.returncode not in (None, 0)
    ray_log = _ray_client(head).get_job_logs(ref.external_id)
    assert "spec.json" in ray_log
    assert (run_dir / LOG_FILE).read_bytes() == earlier + ray_log.encode()

    (run_dir / LOG_FILE).unlink()
    restarted = RayExecutor(settings)  # knows nothing but the ref, like the server after a restart
    again = restarted.state(ProcessRef(pid=0, started_at=0.0, external_id=ref.external_id))
    assert again == ended
    assert (run_dir / LOG_FILE).read_text() == ray_log  # the file was gone: mirrored from the start
    chunk = restarted.stream_lines(run_dir, 0)
    assert chunk.lines and chunk.offset == (run_dir / LOG_FILE).stat().st_size

    # A submission Ray does not know is gone (exit code unknown), not an error.
    unknown = ProcessRef(pid=0, started_at=0.0, external_id="loraforge-0-unknown")
    assert restarted.state(unknown).alive is False


def test_an_evaluation_runs_as_a_ray_job(api: Api, settings: Settings, demo_model: Path, head: RayHead):
    """An evaluation's run is a job like any other: submitted to Ray, its totals copied in by the sync."""
    from evaluation_helpers import create_evaluation, evaluation_body, tiny_test_set, wait_evaluation

    alice = api.account("alice")
    dataset = tiny_test_set(api.client, alice, rows=3)
    body = evaluation_body(dataset["id"], generation={"max_new_tokens": 4}, start=True, name="on ray")
    created = create_evaluation(api.client, alice, body)
    done = wait_evaluation(api.client, alice, created["id"], {"succeeded"}, timeout=RAY_TIMEOUT_S)
    (run,) = done["runs"]
    assert run["results"]["test_set"]["rows"] == 3 and "exact_match" in run["results"]["metrics"]
    row = _job_row(settings, run["job_id"])
    assert row["executor"] == "ray" and row["external_id"].startswith(f"loraforge-{run['job_id']}-")
    samples = api.client.get(f"/api/evaluations/{created['id']}/samples", headers=alice.headers).json()
    assert samples["total"] == 3 and all(
        item["answers"][0]["predict"] is not None for item in samples["items"]
    )
