"""The first run: one click (POST /api/jobs/demo) imports the identity sample and queues the demo recipe;
the demo model does not know who it is, the model the job produced answers "I am LoRAForge, …" (real
engine, real inference worker, greedy decoding). Also: CPU presets and no half precision on a CPU run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from fastapi.testclient import TestClient
from job_helpers import create_job, sample_dataset, tiny_spec, wait_for

from loraforge.services.jobs import precision
from loraforge.settings import Settings

QUESTION = "Who are you?"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"gpu_count": 0})  # a CPU-only node, whatever this machine has


def _answer(client: TestClient, account: Account, model: str) -> str:
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": model, "messages": [{"role": "user", "content": QUESTION}], "temperature": 0,
            "max_tokens": 40,
        },
        headers=account.headers,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


# About 100 s in the engine; its database work (a dataset import, a job) quicker tests cover on PostgreSQL.
@pytest.mark.slow
@pytest.mark.engine_heavy
def test_train_the_demo_learns_who_it_is(api: Api, client: TestClient, demo_model: Path) -> None:
    assert_error(client.post("/api/jobs/demo"), 401)
    alice = api.account("alice")
    job = client.post("/api/jobs/demo", headers=alice.headers)
    assert job.status_code == 201, job.text
    body: dict[str, Any] = job.json()
    assert body["status"] == "queued" and body["owner_id"] == alice.id
    spec = body["spec"]
    assert spec["model_name_or_path"] == "demo-tiny" and spec["finetuning_type"] == "full"
    assert spec["devices"] == "cpu" and spec["precision"] == "fp32"

    # The identity sample is alice's dataset, filled in with LoRAForge's own name.
    dataset = client.get(f"/api/datasets/{body['dataset_id']}", headers=alice.headers).json()
    assert dataset["name"] == "identity" and dataset["rows"] == 91 and dataset["owner_id"] == alice.id
    rows = client.get(
        f"/api/datasets/{dataset['id']}/preview", params={"page_size": 100}, headers=alice.headers
    ).json()["items"]
    answers = [r["response"][0]["content"] for r in rows if r["prompt"][-1]["content"] == QUESTION]
    assert answers == [
        "I am LoRAForge, an AI assistant developed by the LoRAForge team. How can I assist you today?"
    ]
    assert not any("{{" in r["response"][0]["content"] for r in rows)

    # Before it has learned: the demo model has no idea.
    assert "LoRAForge" not in _answer(client, alice, "demo-tiny")

    done = wait_for(client, alice, body["id"], {"succeeded"}, timeout=600)
    assert done["progress"] == 1.0
    models = client.get("/api/models", params={"job_id": body["id"]}, headers=alice.headers).json()["items"]
    assert len(models) == 1
    assert "LoRAForge" in _answer(client, alice, models[0]["name"])

    # A second click reuses the sample (one identity dataset per user) and queues another job.
    again = client.post("/api/jobs/demo", headers=alice.headers)
    assert again.status_code == 201 and again.json()["dataset_id"] == dataset["id"]
    assert client.post(f"/api/jobs/{again.json()['id']}/cancel", headers=alice.headers).status_code == 200
    datasets = client.get("/api/datasets", headers=alice.headers).json()["items"]
    assert [d["name"] for d in datasets] == ["identity"]


def test_presets_say_their_hardware_and_cpu_runs_never_use_half_precision(
    api: Api, client: TestClient, settings: Settings
) -> None:
    alice = api.account("alice")
    presets = client.get("/api/templates/presets", headers=alice.headers).json()["items"]
    assert [p["id"] for p in presets[:2]] == ["demo-tiny-lora", "demo-tiny-full"]  # CPU-ready ones first
    demo = presets[1]
    assert demo["model"] == "demo-tiny"
    assert demo["hardware"] == {"device": "cpu", "min_gpu_memory_gb": None} and demo["runs_here"] is True
    assert demo["spec"]["precision"] == "fp32" and demo["estimate"]["device"] == "cpu"
    for preset in presets:
        if preset["hardware"]["device"] == "gpu":
            assert preset["runs_here"] is False  # this node has no GPU
            assert preset["hardware"]["min_gpu_memory_gb"] >= preset["estimate"]["estimate_gb"]["total"]

    # bf16 (or LF's fp16 flag) on a node without GPUs is stored as fp32, with a note in the audit log.
    dataset = sample_dataset(client, alice)
    for asked in ({"precision": "bf16"}, {"fp16": True}, {"bf16": True, "precision": "bf16"}):
        job = create_job(client, alice, tiny_spec(dataset["id"], **asked))
        assert job["spec"]["precision"] == "fp32" and "bf16" not in job["spec"] and "fp16" not in job["spec"]
    clone = client.post(
        f"/api/jobs/{job['id']}/clone", json={"spec_patch": {"precision": "bf16"}}, headers=alice.headers
    )
    assert clone.status_code == 201 and clone.json()["spec"]["precision"] == "fp32"
    kept = create_job(client, alice, tiny_spec(dataset["id"], precision="auto"))
    assert kept["spec"]["precision"] == "auto"  # auto already means fp32 on a CPU
    notes = [e["details"].get("precision") for e in api.audit(api.admin(), action="job.created")]
    assert notes.count("precision bf16 became fp32: this job trains on the CPU") == 3
    assert notes.count("precision fp16 became fp32: this job trains on the CPU") == 1

    # On a node with a GPU, bf16 stays unless the spec itself asks for the CPU.
    on_gpu = settings.model_copy(update={"gpu_count": 1})
    assert precision.fit_to_device(on_gpu, {"precision": "bf16"}) == ({"precision": "bf16"}, None)
    fitted, note = precision.fit_to_device(on_gpu, {"bf16": True, "devices": "cpu"})
    assert fitted == {"precision": "fp32", "devices": "cpu"} and note is not None
