"""Answers from an OpenAI-compatible endpoint (`POST {base_url}/chat/completions`, non-streaming).

Used for provider models under evaluation and for a provider judge. Requests run in a bounded
thread pool; results come back in groups as they finish, so the caller stores them (and can stop
on SIGTERM) between groups. A 429 / 5xx / network failure is retried (3 tries in all, with
backoff, honouring a short Retry-After); a request that still fails becomes a `Completion` with an
`error`, never an exception: one bad sample must not end a run of thousands.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import httpx

TRIES = 3
BACKOFF_S = 1.0  # first retry waits this long, then twice as long
MAX_RETRY_AFTER_S = 30.0
TIMEOUT = httpx.Timeout(300.0, connect=10.0)  # a long answer from a slow model takes minutes


@dataclass(frozen=True)
class Completion:
    key: int
    text: str
    latency_s: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None


class ProviderClient:
    """One endpoint and model; thread-safe (httpx.Client is)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        backoff_s: float = BACKOFF_S,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=TIMEOUT, transport=transport)
        self.backoff_s = backoff_s

    def close(self) -> None:
        self.client.close()

    def complete(
        self, key: int, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, top_p: float
    ) -> Completion:
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "stream": False,
        }
        started = time.perf_counter()
        error = "no attempt"
        wait_s = 0.0
        for attempt in range(TRIES):
            time.sleep(wait_s)
            wait_s = self.backoff_s * 2**attempt
            try:
                response = self.client.post(self.url, json=body)
            except httpx.HTTPError as exc:  # connect / read timeouts, refused, reset
                error = f"request failed: {type(exc).__name__}: {exc}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                error = f"HTTP {response.status_code}: {_error_text(response)}"
                wait_s = max(wait_s, _retry_after(response))
                continue
            if response.status_code >= 400:  # the request itself is wrong: retrying cannot help
                error = f"HTTP {response.status_code}: {_error_text(response)}"
                break
            return _parse(key, response, time.perf_counter() - started)
        return Completion(key=key, text="", latency_s=round(time.perf_counter() - started, 4), error=error)


def _parse(key: int, response: httpx.Response, elapsed: float) -> Completion:
    latency = round(elapsed, 4)
    try:
        body = response.json()
        text = body["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError):
        return Completion(key=key, text="", latency_s=latency, error="not a chat completion response")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return Completion(
        key=key,
        text=str(text),
        latency_s=latency,
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(response.headers.get("retry-after", "0"))))
    except ValueError:
        return 0.0


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    return str(message or response.text[:300] or response.reason_phrase)


def complete_all(
    call: Callable[[int, list[dict[str, str]]], Completion],
    requests: Sequence[tuple[int, list[dict[str, str]]]],
    *,
    concurrency: int,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[list[Completion]]:
    """`call` over every (key, messages) with `concurrency` in flight; yields groups as they finish.

    Nothing new starts once `stop()` is true; the requests in flight finish and are yielded (their
    answers are paid for), then the iteration ends.
    """
    pending = list(reversed(requests))
    running: set[Future[Completion]] = set()
    finished: list[Completion] = []  # handed out about `concurrency` at a time: one event per group
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="eval-provider") as pool:
        while pending or running:
            while pending and len(running) < concurrency and not stop():
                key, messages = pending.pop()
                running.add(pool.submit(call, key, messages))
            if not running:
                break
            done, running = wait(running, return_when=FIRST_COMPLETED)
            finished += [future.result() for future in done]
            if len(finished) >= concurrency or stop():
                yield finished
                finished = []
    if finished:
        yield finished
