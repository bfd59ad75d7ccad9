"""Bounded parsing and validation: what a hostile request costs the server, and no 500s from odd input.

Each test is one finding of the hardening review, reproduced against the real app: nested YAML that
held a core for a minute, specs and chat requests whose rejection took seconds and megabytes, spec
values without upper bounds, ids and text that reached the database or the JSON encoder as 500s, and
job events that showed where the server keeps its data. Time is asserted only where it was the
finding, with bounds far above what the fixed code needs and far below what the old code took.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from fastapi import FastAPI
from fastapi.testclient import TestClient
from job_helpers import HUB_MODEL, RecordingExecutor, create_job, get_job, sample_dataset, tiny_spec

from loraforge.api.errors import error_response
from loraforge.api.schemas.common import ErrorDetail
from loraforge.services.jobs.scheduler import Scheduler
from loraforge.settings import Settings

BIGINT_MAX = 2**63 - 1
SPEC = {"model_name_or_path": HUB_MODEL, "finetuning_type": "lora", "max_steps": 10}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The production body limit: these requests are as large as the ones that found the problems.
    # The test drives the scheduler itself (job events).
    return settings.model_copy(update={"max_body_bytes": 2 * 1024 * 1024, "scheduler_enabled": False})


def _timed(call: Any) -> tuple[Any, float]:
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


def _json_body(client: TestClient, account: Account, path: str, raw: str) -> Any:
    """POST a JSON body written by hand (NaN, lone surrogates: what `json=` would not send)."""
    headers = {**account.headers, "Content-Type": "application/json"}
    return client.post(path, content=raw.encode("utf-8"), headers=headers)


# ---- nested YAML ---------------------------------------------------------------------------------------


def test_nested_yaml_is_refused_in_milliseconds_not_minutes(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    # 100 KB of brackets held a core for 60-90 s; four at once slowed every other user for minutes.
    deep = "a: " + "[" * 50_000 + "]" * 50_000
    for path, body in (
        ("/api/templates/parse", {"yaml": deep}),
        ("/api/templates/import", {"yaml": deep, "name": "deep"}),
    ):
        response, elapsed = _timed(lambda: client.post(path, json=body, headers=alice.headers))  # noqa: B023
        error = assert_error(response, 422, "invalid_yaml", field="body.yaml")
        assert "nested deeper than" in error["details"][0]["message"]
        assert elapsed < 5, f"{path} took {elapsed:.1f} s"
    raw, elapsed = _timed(
        lambda: client.post(
            "/api/templates/import?name=raw",
            content=deep.encode(),
            headers={**alice.headers, "Content-Type": "application/yaml"},
        )
    )
    assert_error(raw, 422, "invalid_yaml", field="body.yaml")
    assert elapsed < 5

    # Deeper than a spec nests: flow collections and one-line block sequences (these overflowed the
    # old parser's stack: 500 RecursionError) and block mappings by indentation.
    nested_block_maps = "".join(" " * i + f"k{i}:\n" for i in range(40)) + " " * 40 + "x: 1\n"
    # And an integer Python will not build from text (a ValueError the parser did not expect).
    huge_int = "cutoff_len: " + "1" * 5000
    for text in ("a: " + "[" * 1000 + "]" * 1000, "a:\n" + "- " * 2000 + "x", nested_block_maps, huge_int):
        response = client.post("/api/templates/parse", json={"yaml": text}, headers=alice.headers)
        assert_error(response, 422, "invalid_yaml", field="body.yaml")
    assert client.get("/api/templates", headers=alice.headers).json()["total"] == 0

    # Specs as people write them still parse: nested mappings and lists within the bounds.
    ok = "model_name_or_path: Qwen/Qwen2.5-0.5B\nreport_to: [none]\ncompat_ignored: {plot_loss: true}\n"
    parsed = client.post("/api/templates/parse", json={"yaml": ok}, headers=alice.headers)
    assert parsed.status_code == 200, parsed.text
    assert parsed.json()["spec"]["compat_ignored"] == {"plot_loss": True}


# ---- validation cost -----------------------------------------------------------------------------------


def test_oversized_specs_are_refused_fast_with_one_small_error(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    dataset = sample_dataset(client, alice)
    # 100k unknown keys took 18 s at POST /api/templates; 20k keys at /api/jobs 3.3 s and a 1.5 MB body.
    huge = {"name": "huge", "spec": {**SPEC, **{f"key_{i}": i for i in range(100_000)}}}
    response, elapsed = _timed(lambda: client.post("/api/templates", json=huge, headers=alice.headers))
    error = assert_error(response, 422, field="body.spec")
    assert "at most 256" in error["details"][0]["message"]
    assert len(response.content) < 2_000 and elapsed < 5, (len(response.content), elapsed)

    many = {"name": "job", "spec": {**tiny_spec(dataset["id"]), **{f"key_{i}": i for i in range(20_000)}}}
    response, elapsed = _timed(lambda: client.post("/api/jobs", json=many, headers=alice.headers))
    assert_error(response, 422, field="body.spec")
    assert len(response.content) < 2_000 and elapsed < 5, (len(response.content), elapsed)

    # Deeply nested values and megabyte keys are refused by shape too, naming the key.
    deep: Any = 1
    for _ in range(50):
        deep = [deep]
    response = client.post(
        "/api/templates", json={"name": "deep", "spec": {**SPEC, "compat_ignored": {"x": deep}}},
        headers=alice.headers,
    )  # fmt: skip
    error = assert_error(response, 422, field="body.spec")
    assert "compat_ignored: nested deeper than" in error["details"][0]["message"]
    long_key = {"name": "long", "spec": {**SPEC, "k" * 1_000_000: 1}}
    response = client.post("/api/templates", json=long_key, headers=alice.headers)
    assert_error(response, 422, field="body.spec")
    assert len(response.content) < 2_000


def test_problems_past_the_first_fifty_are_counted_not_listed(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    spec = {**SPEC, **{f"unknown_{i}": i for i in range(200)}}  # within the key limit: each is a problem
    error = assert_error(
        client.post("/api/templates", json={"name": "t", "spec": spec}, headers=alice.headers),
        422, "invalid_spec",
    )  # fmt: skip
    assert len(error["details"]) == 50
    assert error["details"][0]["field"] == "body.spec.unknown_0"
    assert error["message"].endswith("(and 150 more)"), error["message"][-80:]


def test_chat_requests_with_too_many_messages_are_refused_before_validating_them(
    api: Api, client: TestClient
) -> None:
    alice = api.account("alice")
    # 60k messages in 2 MB took 6.4 s to validate before the model was even looked up.
    messages = [{"role": "user", "content": "hi"}] * 60_000
    response, elapsed = _timed(
        lambda: client.post(
            "/v1/chat/completions", json={"model": "demo-tiny", "messages": messages}, headers=alice.headers
        )
    )
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["param"] == "messages" and "at most 2048 messages" in error["message"]
    assert elapsed < 5

    # A conversation file of 9,000 broken messages: one error per field was a 3.9 MB answer.
    broken = [{"id": "x", "role": "robot", "content": 5}] * 9_000
    response = client.post("/api/chat/conversations/import", json={"messages": broken}, headers=alice.headers)
    error = assert_error(response, 422, "validation_error")
    assert len(error["details"]) == 50 and error["message"].endswith("more)")
    assert len(response.content) < 20_000
    too_many = [{"id": i, "role": "user", "content": "hi"} for i in range(20_000)]
    response, elapsed = _timed(
        lambda: client.post(
            "/api/chat/conversations/import", json={"messages": too_many}, headers=alice.headers
        )
    )
    error = assert_error(response, 422, field="body.messages")
    assert "at most 10000 messages" in error["details"][0]["message"] and elapsed < 5


# ---- upper bounds of spec values ------------------------------------------------------------------------


def test_spec_numbers_have_upper_bounds_in_validation_and_in_the_schema(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    for key, value in (
        ("dataloader_num_workers", 64),
        ("lora_rank", 1_000_000),
        ("cutoff_len", 1_000_000_000),
        ("max_steps", 10**12),
        ("learning_rate", 1e6),
        ("seed", 2**70),
    ):
        response = client.post(
            "/api/templates", json={"name": key, "spec": {**SPEC, key: value}}, headers=alice.headers
        )
        assert_error(response, 422, "invalid_spec", field=f"body.spec.{key}")

    schema = client.get("/api/jobs/spec-schema", headers=alice.headers).json()["schema"]
    unbounded = []
    for name, prop in schema["properties"].items():
        options = [prop, *prop.get("anyOf", [])]
        for part in options + [o["items"] for o in options if "items" in o]:
            numeric = part.get("type") in ("integer", "number") and "enum" not in part and "const" not in part
            if numeric and "maximum" not in part and "exclusiveMaximum" not in part:
                unbounded.append(name)
    assert unbounded == [], unbounded


# ---- 500s under fuzzing ----------------------------------------------------------------------------------


def test_every_id_beyond_bigint_is_a_422_naming_the_parameter(
    app: FastAPI, api: Api, client: TestClient
) -> None:
    admin = api.admin()  # past every role check, so the path itself is what gets judged
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            ints = [
                p["name"] for p in operation.get("parameters", [])
                if p["in"] == "path" and p["schema"].get("type") == "integer"
            ]  # fmt: skip
            if not ints:
                continue
            for p in operation["parameters"]:
                if p["in"] == "path":
                    schema = p["schema"]
                    assert (schema.get("minimum"), schema.get("maximum")) == (1, BIGINT_MAX) or (
                        schema.get("type") != "integer"
                    ), (method, path, p)
            url = path
            for p in operation["parameters"]:
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", str(2**64) if p["name"] in ints else "x")
            response = client.request(method.upper(), url, headers=admin.headers)
            error = assert_error(response, 422)
            fields = {d["field"] for d in error["details"]}
            assert {f"path.{name}" for name in ints} <= fields, (method, url, fields)
            checked += 1
    assert checked > 50

    # Query and body ids, and ids inside a spec (they went to SQLite as they were).
    for url in ("/api/jobs?owner_id=", "/api/templates?owner_id=", "/api/models?job_id="):
        assert_error(client.get(url + str(2**64), headers=admin.headers), 422)
    alice = api.account("alice")
    template = client.post("/api/templates", json={"name": "t", "spec": SPEC}, headers=alice.headers).json()
    response = client.post(
        f"/api/templates/{template['id']}/jobs", json={"name": "j", "dataset": 2**64}, headers=alice.headers
    )
    assert_error(response, 422, field="body.dataset")
    for bad in (2**64, "³", "١٢"):
        response = client.post(
            "/api/jobs", json={"name": "j", "spec": tiny_spec(1, dataset=bad)}, headers=alice.headers
        )
        assert_error(response, 422, "invalid_spec", field="body.spec.dataset")


def test_non_ascii_digits_in_openai_ids_are_not_found_not_a_crash(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    for method, url in (
        ("GET", "/v1/fine_tuning/jobs/³"),
        ("GET", "/v1/fine_tuning/jobs/٣/events"),
        ("GET", "/v1/fine_tuning/jobs/²/checkpoints"),
        ("POST", "/v1/fine_tuning/jobs/³/cancel"),
    ):
        response = client.request(method, url, headers=alice.headers)
        assert response.status_code == 404, (url, response.text)
        assert response.json()["error"]["type"] == "not_found_error"
    response = client.get("/v1/fine_tuning/jobs", params={"after": "³"}, headers=alice.headers)
    assert response.status_code == 400 and response.json()["error"]["param"] == "after", response.text


def test_lone_surrogates_and_nan_are_refused_not_a_500(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    # JSON's \u escapes can carry a lone surrogate into a str; echoed or stored, UTF-8 cannot encode it.
    response = _json_body(
        client, alice, "/api/templates", '{"name": "s", "spec": {"model_name_or_path": "x/y", "\\udc80": 1}}'
    )
    assert_error(response, 422, field="body.spec")
    response = _json_body(
        client, alice, "/api/templates",
        '{"name": "s", "spec": {"model_name_or_path": "x/y", "compat_ignored": {"plot_loss": "\\ud800"}}}',
    )  # fmt: skip
    assert_error(response, 422, field="body.spec")
    response = _json_body(
        client, alice, "/v1/fine_tuning/jobs",
        '{"model": "demo-tiny", "training_file": "file-1", "loraforge_spec": {"\\udc80": 1}}',
    )  # fmt: skip
    assert response.status_code == 400 and response.json()["error"]["param"] == "loraforge_spec", (
        response.text
    )
    # Whatever still echoes one (a message, a field name) writes it escaped instead of failing to encode.
    rendered = error_response(
        422, message="bad \udc80", details=[ErrorDetail(field="body.spec.\ud800", message="unknown \udfff")]
    )
    body = json.loads(bytes(rendered.body).decode("utf-8"))["error"]
    assert body["message"] == "bad \\udc80" and body["details"][0]["field"] == "body.spec.\\ud800"
    # NaN is not JSON: a spec holding it was stored, then failed to render (500) on every read.
    response = _json_body(
        client, alice, "/api/templates",
        '{"name": "n", "spec": {"model_name_or_path": "x/y", "compat_ignored": {"plot_loss": NaN}}}',
    )  # fmt: skip
    assert_error(response, 422, field="body.spec")
    assert client.get("/api/templates", headers=alice.headers).json()["total"] == 0


# ---- job events -----------------------------------------------------------------------------------------


def test_job_events_show_paths_relative_to_the_run_directory(
    app: FastAPI, api: Api, client: TestClient, settings: Settings
) -> None:
    alice = api.account("alice")
    dataset = sample_dataset(client, alice)
    job = create_job(client, alice, tiny_spec(dataset["id"], model_name_or_path=HUB_MODEL), start=True)
    scheduler = Scheduler(settings, app.state.db, executor=RecordingExecutor())
    scheduler.tick()  # admitted and launched: the run directory exists
    run = settings.runs_dir / str(job["id"])
    # What the engine writes (absolute paths: it runs on the server), as the scheduler tails it.
    lines: list[dict[str, Any]] = [
        {"type": "log", "level": "info", "message": f"loading model from {settings.models_dir}/demo-tiny"},
        {"type": "status", "status": "training"},
        {"type": "checkpoint", "step": 2, "path": f"{run}/output/checkpoint-2", "metrics": {"loss": 1.5}},
        {"type": "artifact", "kind": "adapter", "path": f"{run}/output"},
        {
            "type": "error", "code": "disk_full",
            "message": f"no space left writing {run}/output/checkpoint-4",
            "details": {"cache": f"{settings.data_dir}/cache/tokenized"},
        },
        {"type": "status", "status": "failed"},
    ]  # fmt: skip
    with (run / "events.jsonl").open("w", encoding="utf-8") as out:
        for seq, line in enumerate(lines, 1):
            out.write(json.dumps({"seq": seq, "ts": time.time(), **line}) + "\n")
    scheduler.tick()
    failed = get_job(client, alice, job["id"])
    assert failed["status"] == "failed"

    events = client.get(f"/api/jobs/{job['id']}/events", headers=alice.headers).json()["items"]
    assert len(events) == len(lines)
    server_dir = str(settings.data_dir)
    assert server_dir not in json.dumps(events)
    by_type = {e["type"]: e for e in events}
    assert by_type["checkpoint"]["path"] == "output/checkpoint-2"
    assert by_type["artifact"]["path"] == "output"
    assert by_type["log"]["message"] == "loading model from demo-tiny"
    assert by_type["error"]["message"] == "no space left writing output/checkpoint-4"
    assert by_type["error"]["details"] == {"cache": "tokenized"}
    # The job's error (a copy of the error event) and the WebSocket replay show the same.
    assert server_dir not in json.dumps(failed)
    assert failed["error"]["message"] == "no space left writing output/checkpoint-4"
    with client.websocket_connect(
        f"/ws/jobs/{job['id']}", subprotocols=["loraforge.bearer", alice.token]
    ) as ws:
        received = [ws.receive_json() for _ in range(1 + len(lines))]
    assert received[0]["type"] == "snapshot" and server_dir not in json.dumps(received)
    assert received[1:] == events
