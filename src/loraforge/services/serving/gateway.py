"""The gateway behind `/v1/chat/completions`, chat and playground.

Contract used by conversations/playground (keep these signatures):
- `await resolve(request_state, actor=, model=) -> Endpoint` — registry model (through the manager) or a
  provider model `<provider>/<model>`; NotFound(code="model_not_found").
- `await complete(endpoint, body) -> dict` — a non-streamed chat.completion (OpenAI shape), `<think>`
  split into `message.reasoning_content`, `usage` filled.
- `stream(endpoint, body) -> AsyncIterator[dict]` — chat.completion.chunk dicts (reasoning split into
  `delta.reasoning_content`), the last one carrying `usage`. Closing the iterator cancels upstream.

`body` is an OpenAI chat body whose `model` is the caller's name for the model (what responses
report); the upstream gets `Endpoint.model` instead, with `Endpoint.extra_body` merged in. Callers
should pass only fields they validated (`api/openai/schemas.ChatCompletionRequest.upstream_body`):
in particular a caller's own `loraforge` key must never reach a worker (it names server folders).
Both take an optional `timeout=` (seconds per upstream read; default: the settings' default).

Errors: `inference.upstream.UpstreamError` (502/504, or the upstream's 4xx passed through);
`stream` raises before its first chunk when the upstream refuses, so callers can still answer with
a proper status; a failure after that surfaces from the iterator.

Providers (`providers.ProviderEndpoint`) are servers a user chose: they are reached only through the
outbound policy's transport (every connection checked: 502 `destination_not_allowed` when refused),
and their errors carry the status, never their body or the low-level reason (`echo=False`).
Registry models run on our own workers, whose messages are shown as they are.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import anyio
import httpx

from loraforge.db.models import User
from loraforge.db.session import Database
from loraforge.errors import NotFound
from loraforge.inference import upstream
from loraforge.inference.think import Split, ThinkSplitter, split_text, template_opens_think
from loraforge.inference.types import Endpoint
from loraforge.services.models import resolution
from loraforge.services.platform.outbound import OutboundPolicy, OutboundRefused
from loraforge.services.platform.outbound_transport import AsyncGuardedTransport
from loraforge.services.serving import providers as provider_service
from loraforge.settings import Settings

DEFAULT_TIMEOUT_SECONDS = 600.0


# ---- resolve ------------------------------------------------------------------------------------


def _resolve_sync(
    settings: Settings, database: Database, actor: User, model: str
) -> tuple[Any, Endpoint | None]:
    """Registry first, then providers (`<provider>/<model>`): (ServedModel, None) or (None, Endpoint)."""
    with database.session_factory() as session:
        try:
            return resolution.resolve_for_inference(session, settings=settings, actor=actor, name=model), None
        except NotFound:
            if "/" not in model:
                raise
        return None, provider_service.resolve_model(session, settings=settings, actor=actor, name=model)


async def resolve(request_state: Any, *, actor: User, model: str) -> Endpoint:
    """Where to send a chat for `model` (the caller's name): a registry model, served by the manager
    (which may start a worker: seconds), or an enabled provider the caller may use."""
    settings: Settings = request_state.settings
    database: Database = request_state.db
    served, endpoint = await anyio.to_thread.run_sync(_resolve_sync, settings, database, actor, model)
    if endpoint is not None:
        return endpoint
    manager = request_state.inference
    found: Endpoint = await manager.endpoint_for(served, actor_id=actor.id)
    return found


# ---- request bodies ------------------------------------------------------------------------------


def _upstream_payload(endpoint: Endpoint, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    payload = {
        key: value for key, value in body.items() if key not in ("stream", "stream_options", "loraforge")
    }
    payload.update(endpoint.extra_body)
    payload["model"] = endpoint.model
    payload["stream"] = stream
    if stream:
        # Always: usage is what chat history and the playground record, even when the caller did not ask.
        payload["stream_options"] = {"include_usage": True}
    return payload


def _url(endpoint: Endpoint) -> str:
    return endpoint.base_url.rstrip("/") + "/chat/completions"


def _label(endpoint: Endpoint) -> str:
    return endpoint.label or "the model server"


def _timeout(timeout: float | None) -> httpx.Timeout:
    return upstream.timeout(timeout or DEFAULT_TIMEOUT_SECONDS)


def _client(policy: OutboundPolicy | None) -> httpx.AsyncClient:
    """Our workers' shared client, or for a provider one whose every connection obeys `policy`."""
    if policy is None:
        return upstream.async_client()
    return upstream.async_client(("outbound", policy), lambda: AsyncGuardedTransport(policy))


# ---- reasoning hint ------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _folder_opens_think(folder: str) -> bool | None:
    """Whether the chat template in `folder` opens `<think>` itself; None when it has no template."""
    root = Path(folder)
    try:
        jinja = root / "chat_template.jinja"
        if jinja.is_file():
            return template_opens_think(jinja.read_text(encoding="utf-8", errors="replace"))
        config = root / "tokenizer_config.json"
        if config.is_file():
            template = json.loads(config.read_text(encoding="utf-8", errors="replace")).get("chat_template")
            if isinstance(template, list):  # named templates: the default one
                template = next((t.get("template") for t in template if t.get("name") == "default"), None)
            if isinstance(template, str):
                return template_opens_think(template)
    except (OSError, ValueError, AttributeError):
        return None
    return None


def opens_think(endpoint: Endpoint) -> bool:
    """For streams: does the served model's template open `<think>` (DeepSeek-R1 style)?

    Known only for local folders (registry models); an adapter's own template wins over its base's.
    Providers: unknown (False) — their whole texts are still split right, streams see both-tag form.
    """
    spec = endpoint.extra_body.get("loraforge")
    if not isinstance(spec, dict):
        return False
    for key in ("adapter", "base"):
        folder = spec.get(key)
        if isinstance(folder, str) and folder.startswith("/"):
            found = _folder_opens_think(folder)
            if found is not None:
                return found
    return False


# ---- usage fallback ------------------------------------------------------------------------------


def _words(text: str) -> int:
    return len(text.split())


def _prompt_words(body: dict[str, Any]) -> int:
    total = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += _words(content)
        elif isinstance(content, list):
            total += sum(_words(str(part.get("text", ""))) for part in content if isinstance(part, dict))
    return total


def approximate_usage(body: dict[str, Any], completion_text: str) -> dict[str, int]:
    """Usage for upstreams that report none: whitespace-separated words stand in for tokens.

    A documented fallback only (real tokenizers count more tokens than words); every builtin and
    vLLM answer carries real counts.
    """
    prompt, completion = _prompt_words(body), _words(completion_text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _usage_complete(usage: Any) -> bool:
    return isinstance(usage, dict) and all(
        isinstance(usage.get(key), int) for key in ("prompt_tokens", "completion_tokens", "total_tokens")
    )


# ---- complete ------------------------------------------------------------------------------------


async def complete(
    endpoint: Endpoint, body: dict[str, Any], *, timeout: float | None = None
) -> dict[str, Any]:
    """One non-streamed chat completion, reasoning split off, usage filled, `model` = the caller's name."""
    policy = provider_service.policy_of(endpoint)
    echo = policy is None
    client = _client(policy)
    label = _label(endpoint)
    try:
        response = await client.post(
            _url(endpoint),
            json=_upstream_payload(endpoint, body, stream=False),
            headers=upstream.auth_headers(endpoint.api_key),
            timeout=_timeout(timeout),
        )
    except httpx.HTTPError as exc:
        raise upstream.transport_error(label, exc, echo=echo) from None
    except OutboundRefused:
        raise provider_service.destination_refused(label) from None
    if response.status_code != 200:
        raise upstream.status_error(label, response.status_code, response.content, echo=echo)
    try:
        result = response.json()
        choices = result["choices"]
        if not isinstance(result, dict) or not isinstance(choices, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise upstream.UpstreamError(
            f"{label} answered with something that is not a chat completion"
        ) from None
    opened = opens_think(endpoint)
    text = ""
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str) and not message.get("reasoning_content"):
            split = split_text(content, opened=opened)
            message["content"] = split.content
            if split.reasoning:
                message["reasoning_content"] = split.reasoning
        text += f"{message.get('reasoning_content') or ''} {message.get('content') or ''} "
    if not _usage_complete(result.get("usage")):
        result["usage"] = approximate_usage(body, text)
    result["model"] = body.get("model", endpoint.model)
    result.setdefault("object", "chat.completion")
    result.setdefault("id", f"chatcmpl-{uuid.uuid4().hex}")
    result.setdefault("created", int(time.time()))
    return result


# ---- stream --------------------------------------------------------------------------------------


def _sse_data(line: str) -> str | None:
    """The payload of an SSE `data:` line (None for comments, event names, blank lines)."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip()


class _Reframer:
    """Turns upstream chunks into ours: reasoning split, our model name, usage tracked."""

    def __init__(self, endpoint: Endpoint, body: dict[str, Any]) -> None:
        self.body = body
        self.model = str(body.get("model", endpoint.model))
        self.splitter = ThinkSplitter(opened=opens_think(endpoint))
        self.text: list[str] = []
        self.usage_seen = False
        self.flushed = False
        self.template: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
        }

    def _apply(self, delta: dict[str, Any], split: Split) -> None:
        if split.reasoning:
            delta["reasoning_content"] = (delta.get("reasoning_content") or "") + split.reasoning
            self.text.append(split.reasoning)
        if split.content:
            delta["content"] = split.content
            self.text.append(split.content)

    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        for key in ("id", "created"):
            if key in chunk:
                self.template[key] = chunk[key]
        chunk["model"] = self.model
        chunk.setdefault("object", "chat.completion.chunk")
        if _usage_complete(chunk.get("usage")):
            self.usage_seen = True
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return chunk  # the usage chunk (choices: [])
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            content = delta.pop("content", None)
            if isinstance(delta.get("reasoning_content"), str):
                self.text.append(delta["reasoning_content"])  # the upstream split it already
            split = self.splitter.feed(content) if isinstance(content, str) else Split()
            if choice.get("finish_reason") is not None:
                split.extend(self.splitter.flush())
                self.flushed = True
            self._apply(delta, split)
            if content is not None and "content" not in delta and "role" in delta:
                delta["content"] = ""  # the first chunk keeps OpenAI's `{"role", "content": ""}`
        if all(_empty_choice(choice) for choice in choices) and not chunk.get("usage"):
            return None  # everything in it is held back (a tag cut in two): nothing to send yet
        return chunk

    def closing(self) -> list[dict[str, Any]]:
        """What still has to go out after the upstream's last chunk: held text, then usage."""
        out: list[dict[str, Any]] = []
        if not self.flushed:
            rest = self.splitter.flush()
            if rest:
                delta: dict[str, Any] = {}
                self._apply(delta, rest)
                out.append(
                    {**self.template, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                )
        if not self.usage_seen:
            usage = approximate_usage(self.body, "".join(self.text))
            out.append({**self.template, "choices": [], "usage": usage})
        return out


def _empty_choice(choice: Any) -> bool:
    if not isinstance(choice, dict):
        return False
    delta = choice.get("delta")
    return (
        choice.get("finish_reason") is None
        and isinstance(delta, dict)
        and not any(value not in (None, "") for value in delta.values())
        and not choice.get("logprobs")
    )


async def stream(
    endpoint: Endpoint, body: dict[str, Any], *, timeout: float | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Chunks as they arrive. Closing this iterator closes the upstream connection (the worker then
    stops generating); a refusal raises before the first chunk."""
    policy = provider_service.policy_of(endpoint)
    echo = policy is None
    client = _client(policy)
    label = _label(endpoint)
    request = client.build_request(
        "POST",
        _url(endpoint),
        json=_upstream_payload(endpoint, body, stream=True),
        headers={**upstream.auth_headers(endpoint.api_key), "Accept": "text/event-stream"},
        timeout=_timeout(timeout),
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise upstream.transport_error(label, exc, echo=echo) from None
    except OutboundRefused:
        raise provider_service.destination_refused(label) from None
    try:
        if response.status_code != 200:
            error_body = await response.aread() if echo else b""
            raise upstream.status_error(label, response.status_code, error_body, echo=echo)
        reframer = _Reframer(endpoint, body)
        try:
            async for line in response.aiter_lines():
                data = _sse_data(line)
                if data is None or not data:
                    continue
                if data == "[DONE]":
                    break
                try:
                    parsed = json.loads(data)
                except ValueError:
                    raise upstream.UpstreamError(f"{label} sent a malformed stream event") from None
                if not isinstance(parsed, dict):
                    continue
                if parsed.get("error"):
                    if not echo:
                        raise upstream.UpstreamError(f"{label} reported an error during the answer")
                    raise upstream.UpstreamError(f"{label}: {upstream.upstream_message(data)}")
                out = reframer.chunk(parsed)
                if out is not None:
                    yield out
        except httpx.HTTPError as exc:
            raise upstream.transport_error(label, exc, echo=echo) from None
        for chunk in reframer.closing():
            yield chunk
    finally:
        # Shielded: when the caller's task is being cancelled (client gone), the close must still
        # happen, or the worker keeps generating for nobody.
        with anyio.CancelScope(shield=True):
            await response.aclose()
