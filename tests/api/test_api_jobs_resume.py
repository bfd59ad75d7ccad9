"""Resume a stopped job (stop ends `stopped`) from its checkpoint (the curve continues on the same job),
and "new job with the suggested fix" from a failed one. Real engine subprocesses on the tiny demo model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from job_helpers import create_job, get_job, sample_dataset, tiny_spec, wait_for

pytestmark = pytest.mark.slow

# Long enough that the stop lands well before the end (it comes right after the first checkpoint, at
# step 5), short enough that the resumed attempt does not spend half a minute writing checkpoints.
RESUME_STEPS = 50


def _checkpoints(api: Api, who: Account, job_id: int) -> list[dict[str, Any]]:
    response = api.client.get(f"/api/jobs/{job_id}/checkpoints", headers=who.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _events(api: Api, who: Account, job_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = api.client.get(
            f"/api/jobs/{job_id}/events", params={"after": after}, headers=who.headers
        ).json()
        if not page["items"]:
            return items
        items += page["items"]
        after = page["last_seq"]


def test_stop_then_resume_continues_the_curve_on_the_same_job(api: Api, demo_model: Path):
    alice, bob, operator = api.account("alice"), api.account("bob"), api.account("olga", role="operator")
    dataset = sample_dataset(api.client, alice)
    spec = tiny_spec(dataset["id"], max_steps=RESUME_STEPS, save_strategy="steps", save_steps=5)
    job = create_job(api.client, alice, spec, start=True)
    job_id = job["id"]
    assert job["attempt"] == 1 and job["resume_from"] is None

    # Not resumable while it runs, nor without a checkpoint.
    wait_for(api.client, alice, job_id, {"running"})
    assert_error(
        api.client.post(f"/api/jobs/{job_id}/resume", headers=alice.headers), 409, "invalid_transition"
    )
    deadline = time.monotonic() + 60
    while not _checkpoints(api, alice, job_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.client.post(f"/api/jobs/{job_id}/stop", headers=alice.headers).status_code == 200
    # A graceful stop ends `stopped` (resumable), not `cancelled`, and names where and what resumes it.
    stopped = wait_for(api.client, alice, job_id, {"stopped"})
    assert stopped["progress"] is not None and stopped["progress"] < 1.0

    listing = _checkpoints(api, alice, job_id)
    latest = listing[-1]
    assert [c["step"] for c in listing] == sorted(c["step"] for c in listing)
    assert latest["name"] == f"checkpoint-{latest['step']}" and latest["size_bytes"] > 0
    seq_at_stop = stopped["last_event_seq"]
    # The engine checkpoints at the step it stops at: the record and the notification say so.
    assert stopped["error"]["code"] == "stopped"
    assert stopped["error"]["details"] == {"step": latest["step"], "checkpoint": latest["name"]}
    notes = api.client.get("/api/notifications", headers=alice.headers).json()["items"]
    assert (notes[0]["kind"], notes[0]["data"]["checkpoint"]) == ("job.stopped", latest["name"])
    assert notes[0]["body"] == f"Stopped at step {latest['step']}; resume it from {latest['name']}."

    # Owner only: staff 403, strangers 404; names are checked against the listing.
    assert_error(api.client.post(f"/api/jobs/{job_id}/resume", headers=operator.headers), 403, "not_owner")
    assert_error(api.client.post(f"/api/jobs/{job_id}/resume", headers=bob.headers), 404)
    for bad in ("../../etc", "checkpoint-1/../x", "output"):
        response = api.client.post(
            f"/api/jobs/{job_id}/resume", json={"checkpoint": bad}, headers=alice.headers
        )
        assert_error(response, 422, field="body.checkpoint")
    response = api.client.post(
        f"/api/jobs/{job_id}/resume", json={"checkpoint": "checkpoint-99999"}, headers=alice.headers
    )
    assert_error(response, 422, "checkpoint_not_found", field="body.checkpoint")

    response = api.client.post(f"/api/jobs/{job_id}/resume", json={"checkpoint": None}, headers=alice.headers)
    assert response.status_code == 200, response.text
    resumed = response.json()
    assert resumed["status"] == "queued" and resumed["attempt"] == 2
    assert resumed["resume_from"] == latest["name"] and resumed["error"] is None
    assert resumed["finished_at"] is None and resumed["exit_code"] is None

    done = wait_for(api.client, alice, job_id, {"succeeded"}, timeout=180)
    assert done["progress"] == 1.0 and done["attempt"] == 2

    events = _events(api, alice, job_id)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1  # strictly increasing, no duplicates, no restart
    after_resume = [e for e in events if e["seq"] > seq_at_stop]
    first_step = next(e["step"] for e in after_resume if e["type"] == "metric")
    assert first_step == latest["step"] + 1
    assert any("resuming from" in str(e.get("message", "")) for e in after_resume if e["type"] == "log")

    metrics = api.client.get(
        f"/api/jobs/{job_id}/metrics", params={"downsample": 5000}, headers=alice.headers
    )
    steps = [p["step"] for p in metrics.json()["points"]]
    assert steps == list(range(1, RESUME_STEPS + 1))  # one curve, every step once

    actions = [(e["action"], e["target_id"]) for e in api.audit(api.admin(), action="job.resumed")]
    assert actions == [("job.resumed", str(job_id))]
    assert_error(
        api.client.post(f"/api/jobs/{job_id}/resume", headers=alice.headers), 409, "invalid_transition"
    )


@pytest.mark.engine_heavy
def test_failed_job_carries_a_spec_patch_and_clone_applies_it(api: Api, demo_model: Path):
    """QLoRA on a machine without CUDA fails with a machine-readable fix: drop quantization_bit."""
    alice, bob = api.account("alice"), api.account("bob")
    dataset = sample_dataset(api.client, alice)
    job = create_job(api.client, alice, tiny_spec(dataset["id"], quantization_bit=4), start=True, name="q")
    failed = wait_for(api.client, alice, job["id"], {"failed"})
    assert failed["error"]["code"] == "qlora_requires_cuda"
    patch = failed["error"]["details"]["spec_patch"]
    assert patch == {"quantization_bit": None}
    # No checkpoint was written: nothing to resume.
    assert_error(
        api.client.post(f"/api/jobs/{job['id']}/resume", headers=alice.headers), 409, "no_checkpoint"
    )

    body = {"spec_patch": patch, "name": "q fixed"}
    clone = api.client.post(f"/api/jobs/{job['id']}/clone", json=body, headers=alice.headers)
    assert clone.status_code == 201, clone.text
    fixed = clone.json()
    assert fixed["status"] == "draft" and fixed["name"] == "q fixed"
    assert "quantization_bit" not in fixed["spec"] and fixed["spec"]["max_steps"] == 4
    assert fixed["dataset_version_id"] == failed["dataset_version_id"]
    assert api.client.post(f"/api/jobs/{fixed['id']}/start", headers=alice.headers).status_code == 200
    wait_for(api.client, alice, fixed["id"], {"succeeded"})

    # A patch is validated like a new spec; strangers cannot clone.
    bad = api.client.post(
        f"/api/jobs/{job['id']}/clone", json={"spec_patch": {"learning_rate": "fast"}}, headers=alice.headers
    )
    assert_error(bad, 422, "invalid_spec", field="body.spec.learning_rate")
    bad = api.client.post(
        f"/api/jobs/{job['id']}/clone", json={"spec_patch": {"dataset_dir": "/etc"}}, headers=alice.headers
    )
    assert_error(bad, 422, "invalid_spec", field="body.spec.dataset_dir")
    assert_error(api.client.post(f"/api/jobs/{job['id']}/clone", json=body, headers=bob.headers), 404)
    assert get_job(api.client, alice, job["id"])["status"] == "failed"
