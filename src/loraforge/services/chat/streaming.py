"""One streamed chat completion through the gateway, with the answer and its timings accumulated.

Shared by conversations and the playground: both turn gateway chunks into deltas for the browser and
keep what they need to store afterwards (content, reasoning, tokens, latency, time to first token).
Closing the delta iterator early (client gone) closes the gateway stream, which cancels upstream.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio

from loraforge.inference.types import Endpoint
from loraforge.services.serving import gateway

# Sampling parameters a chat may pass upstream; anything else (e.g. the builtin worker's `loraforge`
# key, which names folders) never leaves through a conversation or the playground.
ALLOWED_PARAMS = frozenset(
    {"temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty", "stop", "seed"}
)
CANCELLED = "cancelled"
ERRORED = "error"


@dataclass(frozen=True)
class Delta:
    content: str | None = None
    reasoning_content: str | None = None


@dataclass
class GenerationResult:
    content: str = ""
    reasoning_content: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    finish_reason: str | None = None

    @property
    def has_output(self) -> bool:
        return bool(self.content or self.reasoning_content)

    @property
    def tokens_per_second(self) -> float | None:
        """Decoding speed: completion tokens over the time after the first token (whole time if none)."""
        if not self.completion_tokens or self.latency_ms is None:
            return None
        span = self.latency_ms - (self.ttft_ms or 0.0)
        if span <= 0:
            span = self.latency_ms
        return round(self.completion_tokens / (span / 1000.0), 2) if span > 0 else None


def request_body(*, model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat body; usage is asked for so token counts can be stored."""
    return {
        **{key: value for key, value in params.items() if key in ALLOWED_PARAMS and value is not None},
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def close_stream(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator even while the caller is being cancelled (the client went away)."""
    close = getattr(iterator, "aclose", None)
    if close is None:
        return
    # Shielded: this runs while the request is being cancelled, and closing the gateway stream is
    # what tells upstream to stop generating.
    with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
        await close()


class Generation:
    """Streams one completion; `result` holds what has arrived so far (also after an error or cancel)."""

    def __init__(self, endpoint: Endpoint, body: dict[str, Any]) -> None:
        self.endpoint = endpoint
        self.body = body
        self.result = GenerationResult()

    def _absorb(self, chunk: dict[str, Any], started: float) -> Delta | None:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.result.prompt_tokens = _int_or_none(usage.get("prompt_tokens"))
            self.result.completion_tokens = _int_or_none(usage.get("completion_tokens"))
        choices = chunk.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return None
        choice = choices[0]
        if choice.get("finish_reason"):
            self.result.finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta") or {}
        content = delta.get("content") or None
        reasoning = delta.get("reasoning_content") or None
        if content is None and reasoning is None:
            return None
        if self.result.ttft_ms is None:
            self.result.ttft_ms = round((time.perf_counter() - started) * 1000.0, 2)
        if content:
            self.result.content += content
        if reasoning:
            self.result.reasoning_content += reasoning
        return Delta(content=content, reasoning_content=reasoning)

    async def deltas(self) -> AsyncIterator[Delta]:
        """Yield each piece of the answer; errors from the gateway propagate (after the stream is closed)."""
        started = time.perf_counter()
        upstream = gateway.stream(self.endpoint, self.body)
        try:
            async for chunk in upstream:
                delta = self._absorb(chunk, started)
                if delta is not None:
                    yield delta
        finally:
            self.result.latency_ms = round((time.perf_counter() - started) * 1000.0, 2)
            await close_stream(upstream)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None
