"""Open WebSockets per user are capped (`ws_max_per_user`) across /ws/jobs and /ws/notifications: one
more is accepted and closed with 4429; closing one frees its place; other users are not affected."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest
from api_helpers import Account, Api
from fastapi.testclient import TestClient
from job_helpers import create_job, sample_dataset, tiny_spec
from starlette.websockets import WebSocketDisconnect

from loraforge.settings import Settings

CAP = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"ws_max_per_user": CAP, "scheduler_enabled": False, "ws_heartbeat_seconds": 0.5}
    )


def _open(client: TestClient, url: str, account: Account) -> Any:
    return client.websocket_connect(url, subprotocols=["loraforge.bearer", account.token])


def _refused_with(client: TestClient, url: str, account: Account) -> int | None:
    """The close code when the server closes at once, None when it sends its first message."""
    try:
        with _open(client, url, account) as ws:
            ws.receive_json()
    except WebSocketDisconnect as exc:
        return exc.code
    return None


def test_one_user_may_hold_only_the_cap_across_both_routes(api: Api, client: TestClient) -> None:
    alice, bob = api.account("alice"), api.account("bob")
    job = create_job(client, alice, tiny_spec(sample_dataset(client, alice)["id"]))
    jobs_url, notes_url = f"/ws/jobs/{job['id']}", "/ws/notifications"
    with ExitStack() as stack:
        for url in (jobs_url, notes_url, jobs_url):  # CAP sockets, on both routes
            ws = stack.enter_context(_open(client, url, alice))
            assert ws.receive_json()["type"] == "snapshot"
        assert _refused_with(client, notes_url, alice) == 4429
        assert _refused_with(client, jobs_url, alice) == 4429
        # Another user has places of their own.
        assert _refused_with(client, notes_url, bob) is None
    # Closed sockets gave their places back.
    with ExitStack() as stack:
        for _ in range(CAP):
            ws = stack.enter_context(_open(client, notes_url, alice))
            assert ws.receive_json()["type"] == "snapshot"
    assert client.app.state.ws_slots.open_count(alice.id) == 0  # type: ignore[attr-defined]


def test_refused_and_failed_handshakes_do_not_use_up_places(api: Api, client: TestClient) -> None:
    alice = api.account("alice")
    for _ in range(CAP + 2):
        # Closed for a bad parameter or an unknown job: the place is given back each time.
        assert _refused_with(client, "/ws/notifications?after=x", alice) == 4400
        assert _refused_with(client, "/ws/jobs/999999", alice) == 4404
    assert client.app.state.ws_slots.open_count(alice.id) == 0  # type: ignore[attr-defined]
    with ExitStack() as stack:
        for _ in range(CAP):
            ws = stack.enter_context(_open(client, "/ws/notifications", alice))
            assert ws.receive_json()["type"] == "snapshot"
