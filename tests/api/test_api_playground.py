"""The playground: several models streamed side by side (real gateway and worker), runs saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from chat_helpers import deltas_text, iter_events, stream_events
from fastapi.testclient import TestClient

from loraforge.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"scheduler_enabled": False})


def _run(client: TestClient, account: Account, body: dict[str, Any]) -> list[Any]:
    return stream_events(client, account, "/api/chat/playground", body)


def test_models_stream_side_by_side_and_the_run_is_saved(
    client: TestClient, api: Api, demo_model: Path
) -> None:
    alice = api.account("alice")
    body = {
        "prompt": "Say something about adapters.",
        "system_prompt": "Be brief.",
        "models": ["demo-tiny", "no-such-model", "demo-tiny"],
        "params": {"max_tokens": 6, "seed": 3},
    }
    events = _run(client, alice, body)
    names = [e.name for e in events]
    assert names[-1] == "done" and names.count("done") == 1
    assert all(isinstance(e.data["index"], int) for e in events if e.name != "done")

    # The unknown model fails alone, with the project's error body; the others answer.
    errors = [e.data for e in events if e.name == "error"]
    assert len(errors) == 1 and errors[0]["index"] == 1 and errors[0]["model"] == "no-such-model"
    assert errors[0]["error"]["code"] == "model_not_found" and errors[0]["error"]["message"]
    results = {e.data["index"]: e.data for e in events if e.name == "result"}
    assert sorted(results) == [0, 2]
    for index, result in results.items():
        assert result["model"] == "demo-tiny" and result["error"] is None
        assert result["content"] == deltas_text(events, index) and result["content"]
        assert result["completion_tokens"] and result["completion_tokens"] <= 6
        assert result["prompt_tokens"] > 0 and result["latency_ms"] > 0 and result["ttft_ms"] is not None
        assert result["tokens_per_second"] > 0 and result["finish_reason"] in ("stop", "length")
    assert {e.data["index"] for e in events if e.name == "delta"} == {0, 2}

    # Saved: the list, the run, the same answers.
    run_id = events[-1].data["run_id"]
    listed = client.get("/api/chat/playground", headers=alice.headers).json()
    assert [r["id"] for r in listed["items"]] == [run_id] and listed["total"] == 1
    run = client.get(f"/api/chat/playground/{run_id}", headers=alice.headers).json()
    assert run["prompt"] == body["prompt"] and run["system_prompt"] == "Be brief."
    assert run["params"] == {"max_tokens": 6, "seed": 3}
    assert [r["model"] for r in run["results"]] == body["models"]
    assert run["results"][0]["content"] == results[0]["content"]
    assert run["results"][1]["error"]["code"] == "model_not_found"

    # Someone else sees none of it.
    bob = api.account("bob")
    assert client.get("/api/chat/playground", headers=bob.headers).json()["total"] == 0
    for method in ("GET", "DELETE"):
        response = client.request(method, f"/api/chat/playground/{run_id}", headers=bob.headers)
        assert_error(response, 404, "playground_run_not_found")

    assert client.delete(f"/api/chat/playground/{run_id}", headers=alice.headers).status_code == 204
    assert_error(client.get(f"/api/chat/playground/{run_id}", headers=alice.headers), 404)

    # Leaving early: the models are stopped and what arrived is saved as `cancelled`.
    long = {"prompt": "a long story", "models": ["demo-tiny"], "params": {"max_tokens": 4000, "seed": 1}}
    with client.stream("POST", "/api/chat/playground", json=long, headers=alice.headers) as response:
        assert response.status_code == 200
        first = next(e for e in iter_events(response) if e.name in ("delta", "result", "error"))
    assert first.name == "delta"
    runs = client.get("/api/chat/playground", headers=alice.headers).json()["items"]
    assert len(runs) == 1
    cancelled = runs[0]["results"][0]
    assert cancelled["finish_reason"] == "cancelled" and cancelled["content"] and cancelled["error"] is None


def test_playground_request_is_validated(client: TestClient, api: Api) -> None:
    alice = api.account("alice")
    for body, field in [
        ({"prompt": "x", "models": []}, "body.models"),
        ({"prompt": "x", "models": ["a", "b", "c", "d"]}, "body.models"),
        ({"prompt": "", "models": ["demo-tiny"]}, "body.prompt"),
        (
            {"prompt": "x", "models": ["demo-tiny"], "params": {"loraforge": {"base": "/"}}},
            "body.params.loraforge",
        ),
    ]:
        response = client.post("/api/chat/playground", json=body, headers=alice.headers)
        assert_error(response, 422, field=field)
    assert client.get("/api/chat/playground", headers=alice.headers).json()["total"] == 0


def test_a_model_that_fails_alone_still_saves_the_run(client: TestClient, api: Api) -> None:
    """Without any model that can answer, every index errors and the run is still saved."""
    alice = api.account("alice")
    events = _run(client, alice, {"prompt": "hi", "models": ["nope-1", "nope-2"]})
    assert sorted(e.data["index"] for e in events if e.name == "error") == [0, 1]
    assert events[-1].name == "done"
    run = client.get(f"/api/chat/playground/{events[-1].data['run_id']}", headers=alice.headers).json()
    assert [r["error"]["code"] for r in run["results"]] == ["model_not_found", "model_not_found"]
