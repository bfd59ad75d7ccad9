"""Evaluations over REST with the scheduler off: validation naming fields, drafts, start / cancel /
resume / delete through the jobs state machine, access for owners, strangers and shared readers, the
cache (a repeated run reuses its job; a run that only scores differently reuses the answers), the
spec an evaluation job launches with (no secrets in files), before/after from a training job and a
model version's scores. Jobs finish by hand here; test_api_evaluations_run.py runs the real engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from evaluation_helpers import (
    create_evaluation,
    evaluation_body,
    finish_job_by_hand,
    get_evaluation,
    run_sync,
    tiny_test_set,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient
from job_helpers import HUB_MODEL, create_job, tiny_spec

from loraforge.db.models import Job, JobStatus
from loraforge.services.evaluation import launch_spec
from loraforge.services.jobs.states import transition
from loraforge.services.models import results
from loraforge.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"scheduler_enabled": False, "outbound_allow": "127.0.0.1:9"})


def _job(client: TestClient, account: Account, job_id: int) -> dict[str, Any]:
    response = client.get(f"/api/jobs/{job_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def test_create_names_the_field_of_every_bad_input(api: Api, client: TestClient) -> None:
    alice, bob = api.account("alice"), api.account("bob")
    dataset = tiny_test_set(client, alice)
    bobs = tiny_test_set(client, bob, name="bobs")

    def refused(status: int, code: str | None, field: str, **overrides: Any) -> None:
        body = evaluation_body(dataset["id"], **overrides)
        assert_error(client.post("/api/evaluations", json=body, headers=alice.headers), status, code, field)

    refused(404, "model_not_found", "body.models[1]", models=["demo-tiny", "no-such-model"])
    refused(404, "model_not_found", "body.models[0]", models=["nobody/nothing"])
    refused(422, None, "body.models", models=[])
    refused(422, None, "body.models", models=["demo-tiny", "demo-tiny"])
    refused(404, "dataset_not_found", "body.dataset", dataset=bobs["id"])
    refused(404, "version_not_found", "body.dataset_version", dataset_version=bobs["current_version_id"])
    refused(422, None, "body.metrics.0", metrics=["bogus"])
    refused(422, None, "body.metrics", metrics=[])
    refused(422, None, "body.generation.max_new_tokens", generation={"max_new_tokens": 0})
    refused(422, None, "body.generation.top_p", generation={"top_p": 0})
    refused(422, "invalid_evaluation", "body.judge", metrics=["judge"])
    refused(404, "model_not_found", "body.judge.model", metrics=["judge"], judge={"model": "nope"})
    refused(422, "invalid_evaluation", "body.judge.mode", judge={"model": "demo-tiny", "mode": "pairwise"})
    refused(
        422,
        "invalid_evaluation",
        "body.judge.prompt",
        metrics=["judge"],
        judge={"model": "demo-tiny", "prompt": "{nope}"},
    )
    refused(422, "invalid_evaluation", "body.options.regex_pattern", metrics=["regex"])
    refused(422, "invalid_evaluation", "body.metrics", metrics=["multiple_choice", "bleu"])
    refused(422, "invalid_evaluation", "body.split", split="test")
    refused(422, None, "body.split", split="everything")
    refused(422, None, "body.options.n_shot", options={"n_shot": 99})


def test_a_draft_is_started_cancelled_resumed_and_deleted(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    dataset = tiny_test_set(client, alice)
    evaluation = create_evaluation(client, alice, evaluation_body(dataset["id"], name="draft one"))
    assert evaluation["status"] == "draft" and evaluation["progress"] is None
    assert evaluation["dataset"] == {"id": dataset["id"], "name": "qa"}
    assert evaluation["dataset_version"]["id"] == dataset["current_version_id"]
    assert evaluation["generation"] == {"max_new_tokens": 8, "temperature": 0.0, "top_p": 1.0}
    (run,) = evaluation["runs"]
    assert run["model"] == "demo-tiny" and run["model_kind"] == "demo" and run["job_status"] == "draft"
    job = _job(client, alice, run["job_id"])
    assert job["name"] == "eval: draft one · demo-tiny" and job["spec"]["stage"] == "evaluation"
    assert job["dataset_version_id"] == dataset["current_version_id"] and job["owner"] == "alice"

    eid = evaluation["id"]
    assert_error(client.post(f"/api/evaluations/{eid}/cancel", headers=alice.headers), 409)
    started = client.post(f"/api/evaluations/{eid}/start", headers=alice.headers)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "queued" and started.json()["runs"][0]["job_status"] == "queued"
    assert_error(
        client.post(f"/api/evaluations/{eid}/start", headers=alice.headers), 409, "invalid_transition"
    )
    cancelled = client.post(f"/api/evaluations/{eid}/cancel", headers=alice.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # Start again: the same job is resumed (no checkpoint needed), as its next attempt.
    again = client.post(f"/api/evaluations/{eid}/start", headers=alice.headers)
    assert again.status_code == 200 and again.json()["status"] == "queued"
    assert _job(client, alice, run["job_id"])["attempt"] == 2

    renamed = client.patch(
        f"/api/evaluations/{eid}", json={"name": "renamed", "shared": True}, headers=alice.headers
    )
    assert (
        renamed.status_code == 200
        and renamed.json()["name"] == "renamed"
        and renamed.json()["shared"] is True
    )
    assert client.delete(f"/api/evaluations/{eid}", headers=alice.headers).status_code == 204
    assert_error(client.get(f"/api/evaluations/{eid}", headers=alice.headers), 404, "evaluation_not_found")
    assert client.get(f"/api/jobs/{run['job_id']}", headers=alice.headers).status_code == 404
    actions = [e["action"] for e in api.audit(api.admin(), action="evaluation.")]
    for action in ("created", "started", "cancelled", "updated", "deleted"):
        assert f"evaluation.{action}" in actions, actions


def test_private_is_invisible_and_shared_is_read_only(api: Api, client: TestClient) -> None:
    alice, bob = api.account("alice"), api.account("bob")
    dataset = tiny_test_set(client, alice)
    evaluation = create_evaluation(client, alice, evaluation_body(dataset["id"]))
    eid = evaluation["id"]
    for method, path in [
        ("GET", f"/api/evaluations/{eid}"),
        ("POST", f"/api/evaluations/{eid}/start"),
        ("POST", f"/api/evaluations/{eid}/cancel"),
        ("DELETE", f"/api/evaluations/{eid}"),
        ("GET", f"/api/evaluations/{eid}/samples"),
    ]:
        assert_error(client.request(method, path, headers=bob.headers), 404)
    assert_error(client.patch(f"/api/evaluations/{eid}", json={"name": "x"}, headers=bob.headers), 404)
    assert client.get("/api/evaluations", headers=bob.headers).json()["total"] == 0

    shared = client.patch(f"/api/evaluations/{eid}", json={"shared": True}, headers=alice.headers)
    assert shared.status_code == 200
    assert client.get(f"/api/evaluations/{eid}", headers=bob.headers).status_code == 200
    assert [e["id"] for e in client.get("/api/evaluations", headers=bob.headers).json()["items"]] == [eid]
    assert_error(client.post(f"/api/evaluations/{eid}/start", headers=bob.headers), 404)
    assert_error(client.delete(f"/api/evaluations/{eid}", headers=bob.headers), 404)
    assert_error(client.patch(f"/api/evaluations/{eid}", json={"shared": False}, headers=bob.headers), 404)

    # alice's private registered model and dataset are not bob's to evaluate with
    model = client.post(
        "/api/models", json={"name": "alices", "source": "hub", "ref": HUB_MODEL, "download": False},
        headers=alice.headers,
    )  # fmt: skip
    assert model.status_code == 201, model.text
    bobs = tiny_test_set(client, bob, name="bobs")
    body = evaluation_body(bobs["id"], models=["demo-tiny", "alices"])
    assert_error(
        client.post("/api/evaluations", json=body, headers=bob.headers),
        404,
        "model_not_found",
        "body.models[1]",
    )
    body = evaluation_body(dataset["id"])
    assert_error(
        client.post("/api/evaluations", json=body, headers=bob.headers),
        404,
        "dataset_not_found",
        "body.dataset",
    )
    # alice pins her own model by version
    mine = create_evaluation(client, alice, evaluation_body(dataset["id"], models=["alices"]))
    assert mine["runs"][0]["model"] == "alices@v1" and mine["runs"][0]["model_kind"] == "registered"
    assert mine["runs"][0]["model_id"] == model.json()["id"]
    listed = client.get("/api/evaluations", params={"model_version": mine["runs"][0]["model_version_id"]},
                        headers=alice.headers).json()  # fmt: skip
    assert [e["id"] for e in listed["items"]] == [mine["id"]]


def test_cache_reuses_a_job_and_seeds_new_metrics(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    dataset = tiny_test_set(client, alice)
    first = create_evaluation(client, alice, evaluation_body(dataset["id"], start=True))
    job_id = first["runs"][0]["job_id"]
    finish_job_by_hand(app, settings, job_id)
    run_sync(app)
    done = get_evaluation(client, alice, first["id"])
    assert done["status"] == "succeeded" and done["progress"] == 1.0
    assert done["runs"][0]["results"]["metrics"] == {
        "exact_match": 0.5,
        "bleu-4": 12.5,
        "multiple_choice": 0.25,
    }

    jobs_before = client.get("/api/jobs", headers=alice.headers).json()["total"]
    again = create_evaluation(client, alice, evaluation_body(dataset["id"], start=True, name="again"))
    (run,) = again["runs"]
    assert run["cached"] is True and run["job_id"] == job_id and again["status"] == "succeeded"
    assert run["results"] == done["runs"][0]["results"]
    assert client.get("/api/jobs", headers=alice.headers).json()["total"] == jobs_before

    # Only the metrics differ: a new job, seeded with the first job's answers.
    rescored = create_evaluation(
        client, alice, evaluation_body(dataset["id"], metrics=["contains"], start=True)
    )
    new_job = rescored["runs"][0]["job_id"]
    assert new_job != job_id and rescored["runs"][0]["cached"] is False
    with app.state.db.session() as session:
        job = session.get(Job, new_job)
        assert job is not None
        run_dir = settings.runs_dir / str(new_job)
        built = launch_spec.build(session, settings, job, run_dir, 0)
    spec = built.spec
    assert spec["seed_samples"] == str(settings.runs_dir / str(job_id) / "samples.jsonl")
    block = spec["evaluation"]
    assert block["metrics"] == ["contains"] and block["max_samples"] == 4 and block["max_new_tokens"] == 8
    assert block["model_name_or_path"] == str(demo_model) and block["output_dir"] == str(run_dir)
    assert block["use_cpu"] is True and spec["provider"] is None and spec["judge"] is None
    rows = Path(block["eval_dataset"][0]).read_text(encoding="utf-8").splitlines()
    assert len(rows) == 6 and json.loads(rows[0])["messages"][-1] == {"role": "assistant", "content": "0"}
    assert built.checkpoint_resume is False


def test_a_provider_model_launches_with_its_key_in_the_environment_only(
    api: Api, client: TestClient, app: FastAPI, settings: Settings
) -> None:
    alice = api.account("alice")
    dataset = tiny_test_set(client, alice)
    body = {"name": "upstream", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-secret-1"}
    provider = client.post("/api/providers", json=body, headers=alice.headers)
    assert provider.status_code == 201, provider.text
    body = evaluation_body(dataset["id"], models=["upstream/gpt-x"], start=True)
    assert_error(
        client.post("/api/evaluations", json={**body, "metrics": ["perplexity"]}, headers=alice.headers),
        422, "invalid_evaluation", "body.models[0]",
    )  # fmt: skip
    evaluation = create_evaluation(client, alice, body)
    (run,) = evaluation["runs"]
    assert run["model_kind"] == "provider" and run["model"] == "upstream/gpt-x"
    assert _job(client, alice, run["job_id"])["spec"]["devices"] == "cpu"
    with app.state.db.session() as session:
        job = session.get(Job, run["job_id"])
        assert job is not None
        built = launch_spec.build(session, settings, job, settings.runs_dir / str(job.id), 0)
    assert built.spec["provider"] == {"base_url": "http://127.0.0.1:9/v1", "model": "gpt-x"}
    assert built.spec["evaluation"]["model_name_or_path"] == "gpt-x"
    assert built.env == {launch_spec.PROVIDER_KEY_ENV: "sk-secret-1"}
    assert "sk-secret-1" not in json.dumps(built.spec)


def test_before_after_evaluation_and_version_scores(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    dataset = tiny_test_set(client, alice)
    block = {
        "dataset": dataset["id"],
        "metrics": ["exact_match"],
        "generation": {"max_new_tokens": 8},
        "max_samples": 4,
    }
    for bad, field in [
        ({**block, "dataset": 10**9}, "body.spec.evaluation.dataset"),
        ({**block, "metrics": ["nope"]}, "body.spec.evaluation.metrics[0]"),
        ({**block, "generation": {"max_new_tokens": 0}}, "body.spec.evaluation.generation.max_new_tokens"),
        ({**block, "surprise": 1}, "body.spec.evaluation.surprise"),
    ]:
        response = client.post(
            "/api/jobs",
            json={"name": "t", "spec": tiny_spec(dataset["id"], evaluation=bad)},
            headers=alice.headers,
        )
        assert response.status_code in (404, 422), response.text
        assert_error(response, response.status_code, None, field)
    job = create_job(client, alice, tiny_spec(dataset["id"], evaluation=block), name="tuned")
    assert job["spec"]["evaluation"]["dataset_version"] == dataset["current_version_id"]

    # The job succeeds with an adapter, registered as the scheduler does it.
    out = settings.runs_dir / str(job["id"]) / "output"
    out.mkdir(parents=True)
    (out / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}), encoding="utf-8")
    (out / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with app.state.db.session() as session:
        row = session.get(Job, job["id"])
        assert row is not None
        for target in (JobStatus.queued, JobStatus.starting, JobStatus.running, JobStatus.succeeded):
            transition(session, row, target)
        version = results.register_job_result(session, settings=settings, job=row)
        assert version is not None
        version_id = version.id
        session.commit()
    run_sync(app)
    found = client.get("/api/evaluations", headers=alice.headers).json()["items"]
    (evaluation,) = [e for e in found if e["source_job_id"] == job["id"]]
    assert evaluation["name"] == "tuned before/after" and evaluation["status"] == "queued"
    assert [r["model"] for r in evaluation["runs"]] == ["demo-tiny", f"ft:demo-tiny:lf:{job['id']}@v1"]
    assert evaluation["metrics"] == ["exact_match"] and evaluation["options"] == {"max_samples": 4}
    run_sync(app)  # not created twice
    assert len([e for e in client.get("/api/evaluations", headers=alice.headers).json()["items"]
                if e["source_job_id"] == job["id"]]) == 1  # fmt: skip

    base_run, tuned_run = evaluation["runs"]
    finish_job_by_hand(app, settings, base_run["job_id"], {"exact_match": 0.25})
    finish_job_by_hand(app, settings, tuned_run["job_id"], {"exact_match": 0.75})
    run_sync(app)
    scores = client.get(f"/api/models/versions/{version_id}/scores", headers=alice.headers)
    assert scores.status_code == 200, scores.text
    (item,) = scores.json()["items"]
    assert item["evaluation_id"] == evaluation["id"] and item["metrics"] == {"exact_match": 0.75}
    assert item["base"] == {"model": "demo-tiny", "run_id": base_run["id"], "metrics": {"exact_match": 0.25}}
    assert item["delta"] == {"exact_match": 0.5}
    assert_error(
        client.get(f"/api/models/versions/{version_id}/scores", headers=api.account("bob").headers), 404
    )


def test_pairwise_judging_is_queued_once_every_run_succeeded(
    api: Api, client: TestClient, app: FastAPI, settings: Settings, demo_model: Path
) -> None:
    alice = api.account("alice")
    dataset = tiny_test_set(client, alice)
    model = client.post(
        "/api/models", json={"name": "other", "source": "hub", "ref": HUB_MODEL, "download": False},
        headers=alice.headers,
    )  # fmt: skip
    assert model.status_code == 201, model.text
    judge = {
        "model": "demo-tiny",
        "mode": "pairwise",
        "prompt": "{question} {reference} {answer_a} {answer_b}",
    }
    body = evaluation_body(dataset["id"], models=["demo-tiny", "other"], judge=judge, start=True)
    evaluation = create_evaluation(client, alice, body)
    assert evaluation["judge"] == {**judge, "model": "demo-tiny"} and evaluation["judge_job_id"] is None
    for run in evaluation["runs"]:
        finish_job_by_hand(app, settings, run["job_id"])
    run_sync(app)
    queued = get_evaluation(client, alice, evaluation["id"])
    assert queued["judge_job_id"] is not None and queued["status"] == "queued"
    judge_job = _job(client, alice, queued["judge_job_id"])
    assert judge_job["name"] == "eval: sums · judge" and judge_job["status"] == "queued"
    with app.state.db.session() as session:
        row = session.get(Job, queued["judge_job_id"])
        assert row is not None
        built = launch_spec.build(session, settings, row, settings.runs_dir / str(row.id), 0)
    pairwise = built.spec["pairwise"]
    assert [r["name"] for r in pairwise["runs"]] == ["demo-tiny", "other@v1"] and pairwise["baseline"] == 0
    assert pairwise["runs"][0]["samples"] == str(
        settings.runs_dir / str(evaluation["runs"][0]["job_id"]) / "samples.jsonl"
    )
    assert built.spec["judge"]["mode"] == "pairwise" and built.spec["judge"]["local"]["template"] == "auto"
    assert built.spec["evaluation"] is None and built.spec["provider"] is None

    verdict = {
        "baseline": "demo-tiny",
        "vs": [{"model": "other@v1", "win": 0.5, "tie": 0.0, "loss": 0.5, "n": 4}],
    }
    (settings.runs_dir / str(row.id)).mkdir(parents=True, exist_ok=True)
    (settings.runs_dir / str(row.id) / "pairwise.json").write_text(json.dumps(verdict), encoding="utf-8")
    finish_job_by_hand(app, settings, row.id)
    # Between the judging job's success and the sync that reads its verdicts, the evaluation is not done.
    pending = get_evaluation(client, alice, evaluation["id"])
    assert pending["status"] == "running" and pending["judge_results"] is None
    run_sync(app)
    done = get_evaluation(client, alice, evaluation["id"])
    assert done["status"] == "succeeded" and done["judge_results"] == verdict


def test_a_run_whose_job_was_deleted_is_scored_again_on_start(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    dataset = tiny_test_set(client, alice)
    evaluation = create_evaluation(client, alice, evaluation_body(dataset["id"]))
    old_job = evaluation["runs"][0]["job_id"]
    assert client.delete(f"/api/jobs/{old_job}", headers=alice.headers).status_code == 204
    orphan = get_evaluation(client, alice, evaluation["id"])
    assert orphan["runs"][0]["job_id"] is None and orphan["status"] == "draft"
    started = client.post(f"/api/evaluations/{evaluation['id']}/start", headers=alice.headers)
    assert started.status_code == 200, started.text
    run = started.json()["runs"][0]
    assert run["job_id"] is not None and run["job_status"] == "queued"  # (SQLite may reuse the id)
