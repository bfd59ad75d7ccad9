"""REST routes: the playground (one prompt to 1–3 models, answers streamed side by side) and saved runs.

Thin: `services.chat.playground`; the stream is Server-Sent Events (`chat_sse`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, status

from loraforge.api.deps import CurrentUser, SessionDep
from loraforge.api.ids import Id
from loraforge.api.paging import Page, PageSize
from loraforge.api.routes.chat_sse import error_body, sse, stream_responses
from loraforge.api.schemas.chat import (
    PlaygroundDeltaEvent,
    PlaygroundDoneEvent,
    PlaygroundErrorEvent,
    PlaygroundRequest,
    PlaygroundResultEvent,
    PlaygroundRunPage,
    PlaygroundRunPublic,
    PlaygroundStreamEvents,
)
from loraforge.api.sse import EventStreamResponse
from loraforge.inference.types import Endpoint
from loraforge.services.chat import playground
from loraforge.services.serving import gateway

router = APIRouter(tags=["chat"])

_PLAYGROUND_DOC = (
    "Server-Sent Events, each tagged with `index` (the model's position): `delta` `{index, content?, "
    "reasoning_content?}`, `result` `{index, model, content, ..., latency_ms, ttft_ms, tokens_per_second}` "
    "when a model finishes, `error` `{index, model, error: {code, message, details}}` when one fails (the "
    "others go on), finally `done` `{run_id}`. Lines starting with `:` are keep-alive comments."
)


def _playground_event(event: playground.PlaygroundEvent) -> bytes:
    if event.kind == "ping":
        return b": keep-alive\n\n"
    if event.kind == "delta" and event.delta is not None:
        delta = PlaygroundDeltaEvent(
            index=event.index, content=event.delta.content, reasoning_content=event.delta.reasoning_content
        )
        return sse("delta", delta.model_dump(exclude_none=True))
    if event.kind == "result" and event.result is not None:
        return sse("result", PlaygroundResultEvent(index=event.index, **event.result))
    if event.kind == "error" and event.error is not None:
        model = event.result["model"] if event.result else ""
        return sse(
            "error", PlaygroundErrorEvent(index=event.index, model=model, error=error_body(event.error))
        )
    assert event.run_id is not None
    return sse("done", PlaygroundDoneEvent(run_id=event.run_id))


async def _playground_stream(events: AsyncIterator[playground.PlaygroundEvent]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield _playground_event(event)
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


@router.post(
    "/chat/playground",
    response_class=EventStreamResponse,
    response_model=None,
    operation_id="chat_playground_run",
    responses=stream_responses(_PLAYGROUND_DOC, PlaygroundStreamEvents),
)
async def run_playground(body: PlaygroundRequest, request: Request, user: CurrentUser) -> EventStreamResponse:
    """Send one prompt to 1–3 models at once and stream their answers side by side; the run is saved."""
    state = request.app.state

    async def resolve(model: str) -> Endpoint:
        return await gateway.resolve(state, actor=user, model=model)

    events = playground.run_playground(
        database=state.db, resolve=resolve, actor_id=user.id, prompt=body.prompt,
        system_prompt=body.system_prompt, models=list(body.models),
        params=body.params.model_dump(exclude_none=True) if body.params else {},
    )  # fmt: skip
    return EventStreamResponse(_playground_stream(events))


@router.get("/chat/playground", response_model=PlaygroundRunPage, operation_id="chat_playground_list")
def list_playground_runs(
    user: CurrentUser, session: SessionDep, page: Page = 1, page_size: PageSize = 20
) -> PlaygroundRunPage:
    """Your saved playground runs, newest first."""
    found = playground.list_runs(session, actor=user, offset=(page - 1) * page_size, limit=page_size)
    return PlaygroundRunPage(
        items=[PlaygroundRunPublic.model_validate(r) for r in found.items],
        total=found.total, page=page, page_size=page_size,
    )  # fmt: skip


@router.get(
    "/chat/playground/{run_id}", response_model=PlaygroundRunPublic, operation_id="chat_playground_get"
)
def get_playground_run(run_id: Id, user: CurrentUser, session: SessionDep) -> PlaygroundRunPublic:
    return PlaygroundRunPublic.model_validate(playground.get_run(session, actor=user, run_id=run_id))


@router.delete(
    "/chat/playground/{run_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="chat_playground_delete"
)
def delete_playground_run(run_id: Id, user: CurrentUser, session: SessionDep) -> None:
    playground.delete_run(session, actor=user, run_id=run_id)
