"""/v1/models and /v1/chat/completions through the official `openai` client, over real HTTP.

The registry path runs end to end: the app under uvicorn, the inference manager starting a real
builtin worker on the tiny demo model. Reasoning splitting, upstream failures and client disconnects
are driven through a scripted OpenAI-compatible upstream registered as a provider (the demo model
cannot be made to write `<think>` or to fail on cue).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from api_helpers import Account, Api
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openai_live import Script, ScriptedUpstream, ThreadServer, api_key, wait_until

from loraforge.db.models import ModelVersion, RegisteredModel
from loraforge.settings import Settings

MESSAGES: list[Any] = [{"role": "user", "content": "Say something."}]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The scripted upstream is a provider on loopback, which the outbound policy refuses unless allowed.
    return settings.model_copy(update={"outbound_allow": "127.0.0.1"})


@pytest.fixture
def live(app: FastAPI) -> Iterator[ThreadServer]:
    with ThreadServer(app) as server:
        yield server


@pytest.fixture
def http(live: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=120) as client:
        yield client


@pytest.fixture
def live_api(http: httpx.Client) -> Api:
    return Api(http)  # type: ignore[arg-type]  (an httpx.Client speaks the TestClient's interface)


def _client(live: ThreadServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=120)


def _private_model(app: FastAPI, owner: Account, folder: Path, name: str) -> None:
    """A private registered model of `owner` (full weights: the demo model's folder)."""
    with app.state.db.session_factory() as session:
        model = RegisteredModel(
            owner_id=owner.id, name=name, kind="base", source="local", source_ref=str(folder)
        )
        session.add(model)
        session.flush()
        version = ModelVersion(model_id=model.id, number=1, weights="full", status="ready", path=str(folder))
        session.add(version)
        session.flush()
        model.current_version_id = version.id
        session.commit()


@pytest.mark.slow
def test_demo_model_through_the_openai_client(
    app: FastAPI, live: ThreadServer, http: httpx.Client, live_api: Api, demo_model: Path
) -> None:
    alice = live_api.account("alice")
    bob = live_api.account("bob")
    client = _client(live, api_key(http, alice))

    # /v1/models: demo-tiny always; retrieve by id; unknown → NotFoundError.
    ids = [m.id for m in client.models.list().data]
    assert "demo-tiny" in ids
    assert client.models.retrieve("demo-tiny").owned_by == "loraforge"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")

    # Non-streamed: content and usage.
    completion = client.chat.completions.create(model="demo-tiny", messages=MESSAGES, max_tokens=5, seed=1)
    assert completion.model == "demo-tiny"
    assert completion.choices[0].message.role == "assistant"
    assert isinstance(completion.choices[0].message.content, str)
    assert completion.usage is not None and completion.usage.completion_tokens >= 1
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )

    # Streamed with include_usage: deltas, then one usage chunk (no choices) before [DONE].
    chunks = list(
        client.chat.completions.create(
            model="demo-tiny",
            messages=MESSAGES,
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.model == "demo-tiny" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens >= 1
    # Without include_usage: no usage chunk, no usage fields.
    plain = list(
        client.chat.completions.create(model="demo-tiny", messages=MESSAGES, max_tokens=3, stream=True)
    )
    assert plain and all(c.choices and c.usage is None for c in plain)

    # Bad parameters: 400 naming the parameter, before any model is touched.
    bad: list[tuple[dict[str, Any], str]] = [
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"n": 2}, "n"),
        ({"presence_penalty": -3}, "presence_penalty"),
        ({"frequency_penalty": 2.1}, "frequency_penalty"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
         "messages[0].content"),
        ({"messages": [{"role": "user"}]}, "messages[0]"),
    ]  # fmt: skip
    for override, param in bad:
        kwargs: dict[str, Any] = {"model": "demo-tiny", "messages": MESSAGES, **override}
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(**kwargs)
        assert caught.value.status_code == 400
        error = caught.value.body
        assert isinstance(error, dict) and error["param"] == param, (override, error)
        assert error["type"] == "invalid_request_error"
    # Text parts are accepted (joined into one string).
    parts = [{"type": "text", "text": "Say "}, {"type": "text", "text": "something."}]
    ok = client.chat.completions.create(
        model="demo-tiny", messages=[{"role": "user", "content": parts}], max_tokens=2
    )
    assert ok.usage is not None

    # Unknown model → NotFoundError (code model_not_found); bad key → AuthenticationError.
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=MESSAGES)
    assert isinstance(missing.value.body, dict) and missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.AuthenticationError):
        _client(live, "lf_not-a-real-key").models.list()
    raw = http.post("/v1/chat/completions", json={"model": "demo-tiny", "messages": MESSAGES})
    assert raw.status_code == 401
    assert set(raw.json()["error"]) == {"message", "type", "param", "code"}
    assert raw.json()["error"]["type"] == "authentication_error"
    # Malformed JSON is a 400 in OpenAI's shape too.
    garbled = http.post(
        "/v1/chat/completions",
        content=b"{not json",
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert garbled.status_code == 400 and garbled.json()["error"]["code"] == "invalid_json"

    # A private model: its owner lists and uses it; another researcher gets 404 for both.
    _private_model(app, alice, demo_model, "alice-private")
    assert "alice-private" in [m.id for m in client.models.list().data]
    assert client.chat.completions.create(model="alice-private", messages=MESSAGES, max_tokens=2).usage
    bob_client = _client(live, api_key(http, bob))
    assert "alice-private" not in [m.id for m in bob_client.models.list().data]
    with pytest.raises(openai.NotFoundError):
        bob_client.models.retrieve("alice-private")
    with pytest.raises(openai.NotFoundError):
        bob_client.chat.completions.create(model="alice-private", messages=MESSAGES, max_tokens=2)

    # /api keeps the project's own error shape.
    assert set(http.get("/api/providers").json()["error"]) == {"code", "message", "details"}


# ---- the scripted upstream: reasoning, usage fallback, failures, disconnects ----------------------------


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedUpstream, ThreadServer]]:
    upstream = ScriptedUpstream()
    with ThreadServer(upstream.app) as server:
        yield upstream, server


@pytest.mark.slow
def test_reasoning_usage_errors_and_disconnect_through_a_provider(
    live: ThreadServer, http: httpx.Client, live_api: Api, scripted: tuple[ScriptedUpstream, ThreadServer]
) -> None:
    upstream, upstream_server = scripted
    alice = live_api.account("alice")
    response = http.post(
        "/api/providers",
        json={"name": "scripted", "base_url": f"{upstream_server.url}/v1", "api_key": "sk-upstream-1234"},
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    client = _client(live, api_key(http, alice))
    model = "scripted/thinker"

    # Tags cut across chunks: reasoning and content come apart, streamed and whole.
    upstream.script = Script(pieces=["<thi", "nk>Two plus", " two.</th", "ink>\n\n", "It is", " 4."])
    whole = client.chat.completions.create(model=model, messages=MESSAGES, temperature=0.5, stop=["END"])
    message = whole.choices[0].message
    assert message.content == "It is 4."
    assert getattr(message, "reasoning_content", None) == "Two plus two."
    assert whole.model == model and whole.usage is not None and whole.usage.prompt_tokens == 7
    # The upstream got its own model name, our key for it, and only the validated fields.
    sent = upstream.requests[-1]
    assert sent["model"] == "thinker" and sent["temperature"] == 0.5 and sent["stop"] == ["END"]
    assert upstream.headers[-1]["authorization"] == "Bearer sk-upstream-1234"
    chunks = list(
        client.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, extra_body={"loraforge": {"base": "/etc"}}
        )
    )
    assert "loraforge" not in upstream.requests[-1]  # never forwarded: it names server folders
    assert upstream.requests[-1]["stream_options"] == {"include_usage": True}  # always asked upstream
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (reasoning, content) == ("Two plus two.", "It is 4.")
    assert all(c.usage is None for c in chunks)  # not asked for: not forwarded

    # An upstream without usage: counted from words (documented fallback), streamed and whole.
    upstream.script = Script(pieces=["one two", " three"], usage=False)
    counted = client.chat.completions.create(model=model, messages=MESSAGES)
    assert counted.usage is not None and counted.usage.completion_tokens == 3
    assert counted.usage.prompt_tokens == 2  # "Say something."
    streamed = list(
        client.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert streamed[-1].usage is not None and streamed[-1].usage.completion_tokens == 3

    # Upstream failures: its 400 passes through; a 500 is our 502; an error mid-stream raises. A provider
    # is someone else's server reached from inside: its status is shown, never its body.
    upstream.script = Script(status=400, error_message="context too long")
    with pytest.raises(openai.BadRequestError) as rejected:
        client.chat.completions.create(model=model, messages=MESSAGES)
    assert "(400)" in rejected.value.message and "context too long" not in rejected.value.message
    upstream.script = Script(status=500, error_message="boom")
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
    assert failed.value.status_code == 502 and "Traceback" not in failed.value.message
    assert "500" in failed.value.message and "boom" not in failed.value.message
    upstream.script = Script(pieces=["a", "b", "c"], fail_after=2, error_message="worker crashed")
    with pytest.raises(openai.APIError, match="reported an error") as mid_stream:
        list(client.chat.completions.create(model=model, messages=MESSAGES, stream=True))
    assert "worker crashed" not in str(mid_stream.value)

    # The caller goes away mid-stream: the upstream connection is closed (the worker would cancel).
    upstream.stream_closed.clear()
    upstream.script = Script(pieces=["first"], hold_open=True)
    stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    stream.close()
    assert wait_until(upstream.stream_closed.is_set, timeout=20), "upstream stream was not closed"

    # An unreachable provider: 502 in OpenAI's shape.
    upstream_server.__exit__()
    with pytest.raises(openai.InternalServerError) as gone:
        client.chat.completions.create(model=model, messages=MESSAGES)
    assert gone.value.status_code == 502


def test_v1_errors_use_openai_shape(client: TestClient, api: Api) -> None:
    """Without a live server: every /v1 error is `{"error": {message, type, param, code}}`."""
    alice = api.account("alice")

    def error(response: httpx.Response, status: int) -> dict[str, Any]:
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
        assert "Traceback" not in response.text
        found: dict[str, Any] = body["error"]
        return found

    assert error(client.get("/v1/models"), 401)["type"] == "authentication_error"
    assert client.get("/v1/models").headers["www-authenticate"] == "Bearer"
    assert error(client.get("/v1/models", headers={"Authorization": "Bearer nope"}), 401)["code"]
    assert error(client.get("/v1/no-such-route", headers=alice.headers), 404)["type"] == "not_found_error"
    assert error(client.delete("/v1/models", headers=alice.headers), 405)["code"] == "method_not_allowed"
    bad = error(
        client.post(
            "/v1/chat/completions",
            json={"model": "demo-tiny", "messages": MESSAGES, "temperature": "hot"},
            headers=alice.headers,
        ),
        400,
    )
    assert (bad["param"], bad["type"], bad["code"]) == (
        "temperature",
        "invalid_request_error",
        "invalid_type",
    )
    missing = error(
        client.post("/v1/chat/completions", json={"messages": MESSAGES}, headers=alice.headers), 400
    )
    assert (missing["param"], missing["code"]) == ("model", "missing_required_parameter")
    unknown = error(
        client.post(
            "/v1/chat/completions", json={"model": "nope", "messages": MESSAGES}, headers=alice.headers
        ),
        404,
    )
    assert unknown["code"] == "model_not_found"
    # /api is untouched: the project's shape.
    assert set(client.get("/api/providers").json()["error"]) == {"code", "message", "details"}
