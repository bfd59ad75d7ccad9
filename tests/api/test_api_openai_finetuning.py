"""/v1/fine_tuning/jobs with the official `openai` client against a real server: a real engine run on
the demo model from an uploaded file, events, checkpoints, the fine-tuned model answering through
/v1/chat/completions, cancel, request validation, and strangers (404)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from ft_helpers import chat_rows, jsonl
from live_server import LiveServer, live_server
from openai.types.fine_tuning import FineTuningJob

from loraforge.settings import Settings

FINAL = {"succeeded", "failed", "cancelled"}
# Shapes a CPU run on the demo model: two optimiser steps, a checkpoint after each.
TINY = {
    "max_steps": 2,
    "save_strategy": "steps",
    "save_steps": 1,
    "cutoff_len": 128,
    "save_every_minutes": None,
}


@pytest.fixture
def server(settings: Settings, demo_model: Path) -> Iterator[LiveServer]:
    with live_server(settings) as live:
        yield live


def wait_for_final(client: openai.OpenAI, job_id: str, timeout: float = 240.0) -> FineTuningJob:
    deadline = time.monotonic() + timeout
    job = client.fine_tuning.jobs.retrieve(job_id)
    while job.status not in FINAL:
        assert time.monotonic() < deadline, f"job {job_id} still {job.status} after {timeout}s"
        time.sleep(0.25)
        job = client.fine_tuning.jobs.retrieve(job_id)
    return job


def upload(client: openai.OpenAI, rows: list[dict[str, Any]], name: str = "train.jsonl") -> str:
    return client.files.create(file=(name, jsonl(rows)), purpose="fine-tune").id


@pytest.mark.slow
@pytest.mark.engine_heavy
def test_fine_tune_end_to_end_then_chat_with_the_model(server: LiveServer, settings: Settings):
    alice = server.account("alice")
    client = server.openai(alice)
    training_file = upload(client, chat_rows(8))
    created = client.fine_tuning.jobs.create(
        model="demo-tiny",
        training_file=training_file,
        suffix="mybot",
        seed=7,
        metadata={"team": "blue"},
        method={
            "type": "supervised",
            "supervised": {
                "hyperparameters": {"n_epochs": 1, "batch_size": 2, "learning_rate_multiplier": 2}
            },
        },
        extra_body={"loraforge_spec": TINY},
    )
    assert created.object == "fine_tuning.job" and created.status in {"queued", "running"}
    assert created.model == "demo-tiny" and created.training_file == training_file
    assert created.fine_tuned_model is None and created.user_provided_suffix == "mybot"
    assert created.seed == 7 and created.metadata == {"team": "blue"}
    assert created.organization_id == "org-loraforge" and created.result_files == []
    assert created.hyperparameters.n_epochs == 1 and created.hyperparameters.batch_size == 2
    assert created.hyperparameters.learning_rate_multiplier == 2
    assert created.method is not None and created.method.type == "supervised"

    # The same job in the REST API, with the spec built from the request.
    rest = server.http.get(f"/api/jobs/{created.id}", headers=alice.headers).json()
    assert rest["name"] == "mybot"
    assert rest["spec"]["learning_rate"] == pytest.approx(2e-4)
    assert rest["spec"]["stage"] == "sft" and rest["spec"]["finetuning_type"] == "lora"
    assert rest["spec"]["per_device_train_batch_size"] == 2 and rest["spec"]["max_steps"] == 2

    done = wait_for_final(client, created.id)
    assert done.status == "succeeded", done.error
    assert done.finished_at is not None and done.error is None
    assert done.fine_tuned_model == f"ft:demo-tiny:mybot:{created.id}"

    listed = client.fine_tuning.jobs.list()
    assert [j.id for j in listed.data] == [created.id]
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"team": "blue"})] == [created.id]
    assert list(client.fine_tuning.jobs.list(metadata={"team": "red"})) == []

    events = list(client.fine_tuning.jobs.list_events(created.id, limit=100))  # every page
    assert events[-1].message == f"Created fine-tuning job: {created.id}"
    seqs = [int(e.id.rsplit("-", 1)[1]) for e in events]
    assert seqs == sorted(set(seqs), reverse=True)  # newest first, no duplicates across pages
    metrics = [e for e in events if e.type == "metrics"]
    assert {e.data["step"] for e in metrics if isinstance(e.data, dict)} >= {1, 2}  # type: ignore[index]
    assert all(isinstance(e.data, dict) and e.data.get("train_loss") is not None for e in metrics)
    assert events[0].type == "message" and events[0].message == "Status: succeeded"
    assert any(e.message.startswith("Status: training") for e in events)
    assert done.estimated_finish is None and (done.trained_tokens is None or done.trained_tokens > 0)
    # Paging: `after` an event gives the older ones, in pages of any size.
    older = client.fine_tuning.jobs.list_events(created.id, after=events[1].id, limit=3)
    assert [e.id for e in older.data] == [e.id for e in events[2:5]] and older.has_more
    assert [e.id for e in client.fine_tuning.jobs.list_events(created.id, limit=3)] == [e.id for e in events]

    checkpoints = client.fine_tuning.jobs.checkpoints.list(created.id).data
    assert checkpoints, "save_steps 1 leaves a checkpoint"
    newest = checkpoints[0]
    assert newest.object == "fine_tuning.job.checkpoint" and newest.fine_tuning_job_id == created.id
    assert newest.id == f"ftckpt-{created.id}-{newest.step_number}"
    assert (
        newest.fine_tuned_model_checkpoint
        == f"ft:demo-tiny:mybot:{created.id}:ckpt-step-{newest.step_number}"
    )
    assert newest.metrics.train_loss is not None

    # The first request starts an inference worker (torch import, model load): slow on a busy CPU.
    answer = client.with_options(timeout=300).chat.completions.create(
        model=done.fine_tuned_model, messages=[{"role": "user", "content": "What is 2 plus 2?"}], max_tokens=8
    )
    assert answer.model == done.fine_tuned_model
    assert isinstance(answer.choices[0].message.content, str)
    assert answer.usage is not None and answer.usage.completion_tokens > 0

    # A stranger sees none of it.
    bob = server.openai(server.account("bob"))
    for call in (
        lambda: bob.fine_tuning.jobs.retrieve(created.id),
        lambda: bob.fine_tuning.jobs.list_events(created.id),
        lambda: bob.fine_tuning.jobs.checkpoints.list(created.id),
        lambda: bob.fine_tuning.jobs.cancel(created.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert list(bob.fine_tuning.jobs.list()) == []


def test_cancel_a_queued_job_and_strangers_cannot(server: LiveServer):
    alice = server.account("alice")
    client = server.openai(alice)
    job = client.fine_tuning.jobs.create(
        model="demo-tiny",
        training_file=upload(client, chat_rows()),
        extra_body={"loraforge_spec": {"max_steps": 10_000, "learning_rate": 3e-4}},
    )
    assert job.hyperparameters.n_epochs == 3 and job.hyperparameters.batch_size == 4  # "auto"
    assert job.hyperparameters.learning_rate_multiplier == pytest.approx(3)  # the spec's rate wins
    bob = server.openai(server.account("bob"))
    with pytest.raises(openai.NotFoundError):
        bob.fine_tuning.jobs.cancel(job.id)
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.error is None
    assert server.http.get(f"/api/jobs/{job.id}", headers=alice.headers).json()["status"] == "cancelled"
    with pytest.raises(openai.APIStatusError) as caught:  # a final job cannot be cancelled again
        client.fine_tuning.jobs.cancel(job.id)
    assert caught.value.status_code in (400, 409)
    with pytest.raises(openai.NotFoundError):
        bob.fine_tuning.jobs.list_events(job.id)


def _param(error: openai.APIStatusError) -> str | None:
    body = error.body
    assert isinstance(body, dict), body
    param = body.get("param")
    return str(param) if param is not None else None


def test_requests_are_validated_naming_the_parameter(server: LiveServer):
    alice = server.account("alice")
    client = server.openai(alice)
    chat_file = upload(client, chat_rows())
    pairs = [
        {"messages": [{"role": "user", "content": "Hi"}], "chosen": "Hello!", "rejected": "Go away."}
    ] * 2
    pair_file = upload(client, pairs, "pairs.jsonl")
    notes = client.files.create(file=("notes.txt", b"notes"), purpose="assistants").id
    cases: list[tuple[dict[str, Any], str]] = [
        ({"training_file": "file-424242"}, "training_file"),
        ({"training_file": notes}, "training_file"),
        ({"method": {"type": "dpo"}}, "training_file"),  # dpo needs preference rows
        ({"training_file": pair_file}, "training_file"),  # preference rows need dpo
        ({"method": {"type": "reinforcement"}}, "method.type"),
        ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}},
         "method.supervised.hyperparameters.n_epochs"),
        ({"hyperparameters": {"beta": 0.2}}, "hyperparameters.beta"),
        ({"suffix": "bad suffix!"}, "suffix"),
        ({"model": "../etc/passwd"}, "model"),
        ({"validation_file": "file-999999"}, "validation_file"),
        ({"extra_body": {"loraforge_spec": {"max_stepz": 2}}}, "loraforge_spec.max_stepz"),
        ({"extra_body": {"loraforge_spec": {"dataset": 1}}}, "loraforge_spec.dataset"),
        ({"extra_body": {"loraforge_spec": {"cutoff_len": 1}}}, "loraforge_spec.cutoff_len"),
        ({"extra_body": {"unknown_option": True}}, "unknown_option"),
    ]  # fmt: skip
    for overrides, param in cases:
        arguments: dict[str, Any] = {"model": "demo-tiny", "training_file": chat_file, **overrides}
        with pytest.raises(openai.BadRequestError) as caught:
            client.fine_tuning.jobs.create(**arguments)
        assert _param(caught.value) == param, (overrides, caught.value.body)
    # A preference file trains with dpo (queued only here: cancelled at once).
    job = client.fine_tuning.jobs.create(
        model="demo-tiny", training_file=pair_file,
        method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.3, "n_epochs": 1}}},
    )  # fmt: skip
    assert job.method is not None and job.method.type == "dpo"
    assert job.method.dpo is not None and job.method.dpo.hyperparameters is not None
    assert job.method.dpo.hyperparameters.beta == 0.3
    client.fine_tuning.jobs.cancel(job.id)
    rest = server.http.get(f"/api/jobs/{job.id}", headers=alice.headers).json()
    assert rest["spec"]["stage"] == "dpo" and rest["spec"]["pref_beta"] == 0.3


def test_validation_file_and_jobs_made_in_the_rest_api(server: LiveServer):
    alice = server.account("alice")
    client = server.openai(alice)
    training, validation = upload(client, chat_rows()), upload(client, chat_rows(3), "valid.jsonl")
    job = client.fine_tuning.jobs.create(
        model="demo-tiny", training_file=training, validation_file=validation
    )
    assert job.validation_file == validation
    client.fine_tuning.jobs.cancel(job.id)
    spec = server.http.get(f"/api/jobs/{job.id}", headers=alice.headers).json()["spec"]
    valid_dataset = server.http.get(
        "/api/datasets", params={"q": "valid.jsonl"}, headers=alice.headers
    ).json()
    assert spec["validation_dataset"] == valid_dataset["items"][0]["id"]

    # A job made in the REST API: retrievable here (mapped), not in the fine-tuning list.
    dataset_id = spec["dataset"]
    rest_spec = {
        "model_name_or_path": "demo-tiny",
        "stage": "sft",
        "finetuning_type": "lora",
        "dataset": dataset_id,
    }
    rest = server.http.post(
        "/api/jobs", json={"name": "rest", "spec": rest_spec}, headers=alice.headers
    ).json()
    mapped = client.fine_tuning.jobs.retrieve(str(rest["id"]))
    assert mapped.status == "validating_files" and mapped.training_file == f"dataset-{dataset_id}"
    assert mapped.method is not None and mapped.method.type == "supervised"
    assert [j.id for j in client.fine_tuning.jobs.list()] == [job.id]
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("not-a-job")
