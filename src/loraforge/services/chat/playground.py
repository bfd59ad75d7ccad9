"""The playground: one prompt sent to up to three models at once, answers streamed side by side.

Each model runs in its own asyncio task (resolve through the gateway, then stream); their events are
merged into one stream through a queue, each tagged with the model's `index`. A model that fails
reports an error for its index and the others go on. When all are finished the run is stored
(`PlaygroundRun`, one row written once); if the client goes away first, the tasks are cancelled
(which closes their upstream streams) and what arrived is stored with finish_reason `cancelled`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.db.models import PlaygroundRun, User
from loraforge.db.session import Database
from loraforge.errors import NotFound, ServiceError, Unavailable
from loraforge.inference.types import Endpoint
from loraforge.services.chat.streaming import (
    CANCELLED,
    ERRORED,
    Delta,
    Generation,
    close_stream,
    request_body,
)
from loraforge.services.platform.owned_items import get_private

logger = logging.getLogger("loraforge.chat")

KEEPALIVE_SECONDS = 15.0
Resolver = Callable[[str], Awaitable[Endpoint]]


def _not_found() -> NotFound:
    return NotFound("playground run not found", code="playground_run_not_found")


def get_run(session: Session, *, actor: User, run_id: int) -> PlaygroundRun:
    return get_private(session, PlaygroundRun, run_id, actor=actor, not_found=_not_found)


@dataclass(frozen=True)
class RunPage:
    items: list[PlaygroundRun]
    total: int


def list_runs(session: Session, *, actor: User, offset: int, limit: int) -> RunPage:
    query = select(PlaygroundRun).where(PlaygroundRun.owner_id == actor.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(PlaygroundRun.created_at.desc(), PlaygroundRun.id.desc()).offset(offset).limit(limit)
    )
    return RunPage(items=list(rows), total=total)


def delete_run(session: Session, *, actor: User, run_id: int) -> None:
    session.delete(get_run(session, actor=actor, run_id=run_id))
    session.commit()


@dataclass(frozen=True)
class PlaygroundEvent:
    """`delta`, `result` (one model finished), `error` (one model failed), `done` (run stored), `ping`."""

    kind: Literal["delta", "result", "error", "done", "ping"]
    index: int = -1
    delta: Delta | None = None
    result: dict[str, Any] | None = None
    error: ServiceError | None = None
    run_id: int | None = None


def _error_body(error: ServiceError) -> dict[str, Any]:
    details = [{"field": issue.field, "message": issue.message} for issue in error.fields]
    return {"code": error.code, "message": error.message, "details": details}


def _result(model: str, generation: Generation | None, error: ServiceError | None) -> dict[str, Any]:
    """One model's entry in `PlaygroundRun.results` (and the `result` event's payload)."""
    outcome = generation.result if generation is not None else None
    return {
        "model": model,
        "content": outcome.content if outcome else "",
        "reasoning_content": (outcome.reasoning_content or None) if outcome else None,
        "prompt_tokens": outcome.prompt_tokens if outcome else None,
        "completion_tokens": outcome.completion_tokens if outcome else None,
        "latency_ms": outcome.latency_ms if outcome else None,
        "ttft_ms": outcome.ttft_ms if outcome else None,
        "tokens_per_second": outcome.tokens_per_second if outcome else None,
        "finish_reason": outcome.finish_reason if outcome else None,
        "error": _error_body(error) if error is not None else None,
    }


def _store_run(
    database: Database,
    *,
    owner_id: int,
    prompt: str,
    system_prompt: str,
    params: dict[str, Any],
    results: list[dict[str, Any]],
) -> int:
    with database.session_factory() as session:
        run = PlaygroundRun(
            owner_id=owner_id, prompt=prompt, system_prompt=system_prompt, params=params, results=results
        )
        session.add(run)
        session.commit()
        return run.id


async def run_playground(
    *,
    database: Database,
    resolve: Resolver,
    actor_id: int,
    prompt: str,
    system_prompt: str,
    models: list[str],
    params: dict[str, Any],
) -> AsyncGenerator[PlaygroundEvent]:
    """Stream every model's answer (events tagged by index), then store the run and yield `done`."""
    messages: list[dict[str, str]] = []
    if system_prompt.strip():
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": prompt})
    queue: asyncio.Queue[PlaygroundEvent | None] = asyncio.Queue()
    generations: list[Generation | None] = [None] * len(models)
    results: list[dict[str, Any] | None] = [None] * len(models)

    async def one(index: int, model: str) -> None:
        error: ServiceError | None = None
        try:
            endpoint = await resolve(model)
            generation = Generation(endpoint, request_body(model=model, messages=messages, params=params))
            generations[index] = generation
            deltas = generation.deltas()
            try:
                async for delta in deltas:
                    await queue.put(PlaygroundEvent(kind="delta", index=index, delta=delta))
            finally:
                await close_stream(deltas)  # at once, also when this task is cancelled
            if generation.result.finish_reason is None:
                generation.result.finish_reason = "stop"
        except ServiceError as exc:
            error = exc
        except Exception:
            logger.exception("playground generation failed (model %s)", model)
            error = Unavailable("the model failed to answer", code="generation_failed")
        finally:
            # Also on cancellation: the result slot says how far this model got.
            generation_now = generations[index]
            if error is not None and generation_now is not None and generation_now.result.has_output:
                generation_now.result.finish_reason = ERRORED
            results[index] = _result(model, generation_now, error)
        if error is not None:
            await queue.put(PlaygroundEvent(kind="error", index=index, error=error, result=results[index]))
        else:
            await queue.put(PlaygroundEvent(kind="result", index=index, result=results[index]))
        await queue.put(None)

    tasks = [asyncio.create_task(one(index, model)) for index, model in enumerate(models)]
    finished = 0
    try:
        while finished < len(tasks):
            try:
                event = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECONDS)
            except TimeoutError:
                yield PlaygroundEvent(kind="ping")  # keeps proxies from closing a quiet stream
                continue
            if event is None:
                finished += 1
                continue
            yield event
    except BaseException:
        # Client gone: stop the models (closing their upstream streams) and keep what arrived.
        for task in tasks:
            task.cancel()
        with anyio.CancelScope(shield=True):
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
        partial: list[dict[str, Any]] = []
        for entry, model in zip(results, models, strict=True):
            entry = entry or _result(model, None, None)
            if entry["error"] is None and entry["finish_reason"] is None:
                entry["finish_reason"] = CANCELLED
            partial.append(entry)
        _store_run(database, owner_id=actor_id, prompt=prompt, system_prompt=system_prompt, params=params,
                   results=partial)  # fmt: skip
        raise
    stored = [entry or _result(model, None, None) for entry, model in zip(results, models, strict=True)]
    run_id = await anyio.to_thread.run_sync(
        lambda: _store_run(
            database,
            owner_id=actor_id,
            prompt=prompt,
            system_prompt=system_prompt,
            params=params,
            results=stored,
        )
    )
    yield PlaygroundEvent(kind="done", run_id=run_id)
