"""The builtin worker as a real subprocess on the demo model, through the official `openai` client."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from inference_helpers import Worker

HELLO = [{"role": "user", "content": "Tell me about the river and the mountain."}]


def test_non_stream_and_stream_through_the_openai_client(worker: Worker) -> None:
    client = worker.openai()
    assert [m.id for m in client.models.list().data] == ["copy", "demo"]

    completion = client.chat.completions.create(
        model="demo", messages=HELLO, max_tokens=12, temperature=0, extra_body={"ignore_eos": True}
    )
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == "demo"
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason == "length"
    usage = completion.usage
    assert usage is not None and usage.completion_tokens == 12 and usage.prompt_tokens > 5
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    stream = client.chat.completions.create(
        model="demo",
        messages=HELLO,
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content  # greedy: the same answer either way
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 12
    assert chunks[-1].usage.prompt_tokens == usage.prompt_tokens

    # Without include_usage no chunk carries usage.
    plain = list(client.chat.completions.create(model="demo", messages=HELLO, max_tokens=3, stream=True))
    assert all(c.usage is None for c in plain)

    longer = client.chat.completions.create(
        model="demo", messages=[*HELLO, {"role": "assistant", "content": "Sure."}, *HELLO], max_tokens=1
    )
    assert longer.usage is not None and longer.usage.prompt_tokens > usage.prompt_tokens


def test_stop_strings_and_seeded_sampling(worker: Worker) -> None:
    client = worker.openai()
    kwargs: dict[str, Any] = {
        "model": "demo",
        "messages": HELLO,
        "max_tokens": 40,
        "temperature": 1.0,
        "seed": 1234,
        "extra_body": {"ignore_eos": True},
    }
    first = client.chat.completions.create(**kwargs).choices[0].message.content or ""
    again = client.chat.completions.create(**kwargs).choices[0].message.content or ""
    assert first == again and len(first) >= 12  # same seed, same text
    stop = first[6:9]
    cut = first.find(stop)
    stopped = client.chat.completions.create(**kwargs, stop=[stop, "never-appears"]).choices[0]
    assert stopped.message.content == first[:cut]
    assert stopped.finish_reason == "stop"
    streamed = client.chat.completions.create(**kwargs, stop=stop, stream=True)
    chunks = list(streamed)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == first[:cut]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_errors_are_openai_shaped(worker: Worker) -> None:
    client = worker.openai()
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="demo", messages=HELLO, temperature=3)
    assert bad.value.status_code == 400 and bad.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as bad_stop:
        client.chat.completions.create(model="demo", messages=HELLO, stop=["a", "b", "c", "d", "e"])
    assert bad_stop.value.param == "stop"
    with pytest.raises(openai.BadRequestError) as no_messages:
        client.chat.completions.create(model="demo", messages=[])
    assert no_messages.value.param == "messages"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=HELLO)
    assert missing.value.code == "model_not_found"
    wrong = httpx.post(
        f"{worker.base_url}/chat/completions",
        json={"model": "demo", "messages": HELLO},
        headers={"Authorization": "Bearer wrong"},
    )
    assert wrong.status_code == 401 and set(wrong.json()["error"]) == {"message", "type", "param", "code"}
    assert httpx.get(f"{worker.url}/admin/stats").status_code == 401
    unknown = httpx.get(f"{worker.url}/v1/nothing-here", headers=worker.headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["message"]
    not_json = httpx.post(f"{worker.base_url}/chat/completions", content=b"{", headers=worker.headers)
    assert not_json.status_code == 400 and not_json.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="x", messages=HELLO, extra_body={"loraforge": {"base": "/no/such/folder", "adapter": None}}
        )


def test_adapter_changes_greedy_output_and_shares_the_base(
    worker: Worker, demo_folder: Path, adapter_folder: Path
) -> None:
    loads = worker.stats()["loads"]
    client = worker.openai()

    def ask(adapter: Path | None) -> str:
        body = {"loraforge": {"base": str(demo_folder), "adapter": str(adapter) if adapter else None}}
        body["ignore_eos"] = True  # type: ignore[assignment]
        completion = client.chat.completions.create(
            model="m", messages=HELLO, max_tokens=16, temperature=0, extra_body=body
        )
        return completion.choices[0].message.content or ""

    loaded = httpx.post(
        f"{worker.url}/admin/load",
        json={"base": str(demo_folder), "adapter": str(adapter_folder)},
        headers=worker.headers,
        timeout=120,
    )
    assert loaded.status_code == 200 and loaded.json()["bytes"] > 0
    base_text = ask(None)
    adapter_text = ask(adapter_folder)
    assert base_text != adapter_text
    assert ask(None) == base_text  # the plain base really runs without the adapter afterwards
    assert ask(adapter_folder) == adapter_text
    stats = worker.stats()
    entry = next(m for m in stats["loaded"] if m["base"] == str(demo_folder))
    assert entry["adapters"] == [str(adapter_folder)]
    assert stats["loads"] - loads <= 1  # the base is loaded once, the adapter rides on it

    unloaded = httpx.post(
        f"{worker.url}/admin/unload", json={"base": str(demo_folder), "adapter": str(adapter_folder)},
        headers=worker.headers,
    )  # fmt: skip
    assert unloaded.json() == {"unloaded": [str(adapter_folder)]}
    entry = next(m for m in worker.stats()["loaded"] if m["base"] == str(demo_folder))
    assert entry["adapters"] == []


def test_lru_evicts_the_least_recently_used_base(workers: Any, demo_folder: Path, demo_copy: Path) -> None:
    # The demo model is ~0.9 MB: a 1 MB budget holds one base, not two.
    worker: Worker = workers(models={"a": demo_folder, "b": demo_copy}, budget_mb=1)
    client = worker.openai()
    client.chat.completions.create(model="a", messages=HELLO, max_tokens=2)
    assert [m["base"] for m in worker.stats()["loaded"]] == [str(demo_folder)]
    client.chat.completions.create(model="b", messages=HELLO, max_tokens=2)
    stats = worker.stats()
    assert [m["base"] for m in stats["loaded"]] == [str(demo_copy)]
    assert stats["evictions"] == 1 and stats["memory_bytes"] <= stats["memory_budget_bytes"]
    client.chat.completions.create(model="a", messages=HELLO, max_tokens=2)
    stats = worker.stats()
    assert [m["base"] for m in stats["loaded"]] == [str(demo_folder)] and stats["loads"] == 3


def test_client_disconnect_cancels_generation(worker: Worker) -> None:
    client = worker.openai()
    cancelled = worker.stats()["generations_cancelled"]
    stream = client.chat.completions.create(
        model="demo", messages=HELLO, max_tokens=1900, stream=True, extra_body={"ignore_eos": True}
    )
    received = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received += 1
        if received >= 3:
            break
    stream.close()  # the client goes away mid-generation

    stats = worker.wait_stats(lambda s: s["active_generations"] == 0, timeout=30)
    assert stats["generations_cancelled"] == cancelled + 1
    last = stats["last_generation"]
    assert last["cancelled"] and last["completion_tokens"] < 1900

    started = time.monotonic()
    client.chat.completions.create(model="demo", messages=HELLO, max_tokens=2)
    assert time.monotonic() - started < 30  # the slot was free again


def test_requests_queue_first_come_first_served(worker: Worker) -> None:
    """With concurrency 1, a second request waits (queue depth 1) until the first one ends, then
    runs. The first is long and the client ends it once the second is seen queued, so the test holds
    on fast and slow machines alike."""
    client = worker.openai()
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    b_queued = threading.Event()

    def run(name: str, max_tokens: int) -> None:
        stream = client.chat.completions.create(
            model="demo", messages=HELLO, max_tokens=max_tokens, stream=True, extra_body={"ignore_eos": True}
        )
        first = True
        for chunk in stream:
            if first and chunk.choices and chunk.choices[0].delta.content:
                with lock:
                    events.append((name, "first"))
                first = False
            if name == "a" and not first and b_queued.is_set():
                break
        with lock:
            events.append((name, "done"))
        stream.close()

    client.chat.completions.create(model="demo", messages=HELLO, max_tokens=1)  # load the model first
    served = worker.stats()["requests_served"]
    a = threading.Thread(target=run, args=("a", 1900))
    b = threading.Thread(target=run, args=("b", 5))
    a.start()
    worker.wait_stats(lambda s: s["active_generations"] == 1, timeout=30)
    b.start()
    worker.wait_stats(lambda s: s["queue_depth"] == 1, timeout=30)
    b_queued.set()
    a.join(timeout=120)
    b.join(timeout=120)
    assert not a.is_alive() and not b.is_alive()
    assert events == [("a", "first"), ("a", "done"), ("b", "first"), ("b", "done")]
    stats = worker.wait_stats(lambda s: s["active_generations"] == 0)
    assert stats["queue_depth"] == 0 and stats["requests_served"] == served + 2
