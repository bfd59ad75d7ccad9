"""Generated cross-user test: every route that names a resource by id, as its owner, a stranger and nobody.

The routes come from the OpenAPI document the server serves (and the app's WebSocket routes) at run
time: a path parameter called `id` or `*_id` (or a /v1 model name) makes a route part of this test,
and a route whose id has no resource kind in `cross_user_resources.KIND_OF` fails it, so a new route
is covered the day it is added. For each route a real resource is created by alice through the API;
then
  - bob (another researcher) must be refused: 404, as if it did not exist (403 on the admin routes,
    which refuse a researcher whatever the id), and nothing of alice's may appear in the answer;
  - nobody (no credential) must get 401;
  - the owner (alice; the admin for the admin routes) must NOT be refused, which proves the request
    named a real resource and was valid: otherwise bob's 404 would prove nothing.
Each request carries the smallest body and query the operation's schema accepts (`openapi_routes`),
so it reaches the access check instead of stopping at validation. Routes that change or delete get
resources of their own; read-only routes share one of each kind. WebSockets: bob's connection to
alice's job closes 4404, nobody's 4401, and bob's notification stream carries none of alice's.

Chat runs against the scripted OpenAI-compatible upstream on loopback (a provider of alice's, allowed
by `outbound_allow`); the scheduler is off, so a job that is started only queues.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from api_helpers import Account, Api
from cross_user_resources import CANARY, PUBLIC_KINDS, Resources, kind_of
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openai_live import ScriptedUpstream, ThreadServer
from openapi_routes import (
    IdRoute,
    RequestParts,
    SchemaInstances,
    fill_path,
    http_id_routes,
    minimal_request,
    websocket_routes,
)
from starlette.websockets import WebSocketDisconnect

from loraforge.settings import Settings

# Operations where the owner's own request may answer 404 with the resource there: they address a part
# of it that a fresh, never-run resource does not have (the stranger's 404 still comes first: the
# owning resource is looked up before its part).
OWNER_MAY_MISS = {
    "jobs_checkpoint_archive": "a draft job has no checkpoint to archive",
    "jobs_artifact_archive": "a draft job has no artifact to archive",
    "jobs_logs_download": "a draft job has written no log yet",
    "models_version_file": "a hub record has no files on the server to name",
}

# Requests that need values of the resource itself beyond the path (the ids the creator returned).
REQUEST_OVERRIDES: dict[str, Callable[[dict[str, Any], RequestParts], None]] = {
    "datasets_compare_versions": lambda ids, parts: parts.params.update(
        a=ids["_version_id"], b=ids["_version_id"]
    ),
}

# Operations a researcher may not call on any resource: bob's refusal is his role (403), and the
# owner's side of the check is done by an admin, whom the policy lets act on anyone's resource.
STAFF_ONLY = {
    "jobs_set_priority": "operators and admins order the queue",
    "nodes_drain": "operators and admins drain nodes",
    "nodes_undrain": "operators and admins undrain nodes",
    "alerts_acknowledge": "operators and admins handle alerts",
    "alerts_resolve": "operators and admins handle alerts",
}

# WebSockets only operators and admins may open (no id: they show the whole platform).
STAFF_ONLY_WS = {"/ws/operations": "the operators' live dashboard"}

READ_ONLY = {"GET"}


@pytest.fixture
def upstream() -> Iterator[ThreadServer]:
    with ThreadServer(ScriptedUpstream().app) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, upstream: ThreadServer) -> Settings:
    return settings.model_copy(
        update={
            "scheduler_enabled": False,  # a started job only queues: nothing trains here
            "outbound_allow": f"127.0.0.1:{upstream.port}",  # alice's provider: the scripted upstream
            "ws_heartbeat_seconds": 0.3,
        }
    )


@pytest.fixture
def world(api: Api, app: FastAPI, upstream: ThreadServer) -> tuple[Resources, Account]:
    alice = api.account("alice")
    bob = api.account("bob")
    return Resources(api, app, alice, api.admin(), upstream.url), bob


def _document(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def _unmapped(routes: list[IdRoute]) -> list[str]:
    return [
        f"{route.label}: path parameter {name!r}"
        for route in routes
        for name in route.id_params
        if kind_of(name, route.path) is None
    ]


def test_every_route_with_an_id_has_a_resource_kind(client: TestClient, app: FastAPI) -> None:
    routes = http_id_routes(_document(client)) + websocket_routes(app)
    assert len([r for r in routes if r.method != "WS"]) >= 70  # the document really was read
    listed = set(OWNER_MAY_MISS) | set(REQUEST_OVERRIDES) | set(STAFF_ONLY)
    stale = listed - {r.operation_id for r in routes}
    assert not stale, f"entries for operations that no longer take an id: {sorted(stale)}"
    assert not _unmapped(routes), (
        "routes whose id names no resource kind: add the kind to cross_user_resources.KIND_OF "
        "(and a creator) so the cross-user test covers them:\n  " + "\n  ".join(_unmapped(routes))
    )


def _values(route: IdRoute, world: Resources, cache: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Path values (and extras) for the route: one resource per id, fresh unless the route only reads."""
    values: dict[str, Any] = {}
    # The most specific kind first: a message also names its conversation.
    kinds = sorted({kind_of(n, route.path) or "" for n in route.id_params}, key=lambda k: k != "message")
    for kind in kinds:
        if route.method not in READ_ONLY:
            made = world.make(kind)
        else:
            if kind not in cache:
                cache[kind] = world.make(kind)
            made = cache[kind]
        for key, value in made.items():
            values.setdefault(key, value)
    for name in route.other_params:
        values.setdefault(name, "checkpoint-1" if name == "name" else "x")
    return values


def _unechoed(text: str, values: dict[str, Any]) -> str:
    """The answer without the values the caller sent itself (a /v1 model id is a name, echoed in 404s)."""
    for value in values.values():
        text = text.replace(str(value), "")
    return text


def _call(client: TestClient, route: IdRoute, path: str, parts: RequestParts, account: Account | None) -> Any:
    headers = account.headers if account is not None else {}
    return client.request(route.method, path, headers=headers, **parts.kwargs())


def _check_route(
    route: IdRoute, world: Resources, bob: Account, instances: SchemaInstances, cache: dict[str, Any]
) -> list[str]:
    values = _values(route, world, cache)
    path = fill_path(route.path, values)
    parts = minimal_request(route, instances)
    if route.operation_id in REQUEST_OVERRIDES:
        REQUEST_OVERRIDES[route.operation_id](values, parts)
    public = any(kind_of(n, route.path) in PUBLIC_KINDS for n in route.id_params)
    admin_route = route.path.startswith("/api/admin/") or route.operation_id in STAFF_ONLY
    problems: list[str] = []

    stranger = _call(world.client, route, path, parts, bob)
    expected = {403} if admin_route else ({200} if public else {404})
    if stranger.status_code not in expected:
        problems.append(f"bob got {stranger.status_code}, expected {sorted(expected)}: {stranger.text[:300]}")
    if CANARY in _unechoed(stranger.text, values):
        problems.append(f"bob's answer carries alice's data: {stranger.text[:300]}")

    anonymous = _call(world.client, route, path, parts, None)
    if anonymous.status_code != 401:
        problems.append(f"nobody got {anonymous.status_code}, expected 401: {anonymous.text[:300]}")
    if CANARY in _unechoed(anonymous.text, values):
        problems.append(f"nobody's answer carries alice's data: {anonymous.text[:300]}")

    owner = world.admin if admin_route else world.owner
    control = _call(world.client, route, path, parts, owner)
    refused = {401, 403} | (set() if route.operation_id in OWNER_MAY_MISS else {404})
    if control.status_code in refused or control.status_code >= 500:
        problems.append(
            f"the owner's own request got {control.status_code}, so the refusals prove nothing: "
            f"{control.text[:300]}"
        )
    return [f"{route.label} {path}: {p}" for p in problems]


def test_http_routes_with_ids_refuse_other_users_and_nobody(
    client: TestClient, world: tuple[Resources, Account]
) -> None:
    resources, bob = world
    document = _document(client)
    routes = http_id_routes(document)
    assert not _unmapped(routes)
    instances = SchemaInstances(document)
    cache: dict[str, Any] = {}
    problems = [p for route in routes for p in _check_route(route, resources, bob, instances, cache)]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def _close_code(client: TestClient, path: str, account: Account | None) -> int | str:
    """The close code the server ends the connection with, or its first message if it accepted."""
    subprotocols = ["loraforge.bearer", account.token] if account is not None else None
    try:
        with client.websocket_connect(path, subprotocols=subprotocols) as ws:
            return str(ws.receive_json().get("type"))
    except WebSocketDisconnect as closed:
        return closed.code


def _frames_until_heartbeat(client: TestClient, path: str, account: Account) -> list[dict[str, Any]]:
    with client.websocket_connect(path, subprotocols=["loraforge.bearer", account.token]) as ws:
        frames: list[dict[str, Any]] = []
        for _ in range(100):
            frame = ws.receive_json()
            if frame["type"] == "heartbeat":
                return frames
            frames.append(frame)
    raise AssertionError(f"no heartbeat after {frames[-3:]}")


def test_websocket_routes_refuse_other_users_and_nobody(
    client: TestClient, app: FastAPI, world: tuple[Resources, Account]
) -> None:
    resources, bob = world
    routes = websocket_routes(app)
    assert routes and not _unmapped(routes)
    # A notification of alice's exists: a queued job of hers was cancelled.
    job = resources.job()["job_id"]
    for action in ("start", "cancel"):
        response = client.post(f"/api/jobs/{job}/{action}", headers=resources.owner.headers)
        assert response.status_code == 200, response.text
    problems: list[str] = []
    for route in routes:
        values = _values(route, resources, {})
        path = fill_path(route.path, values)
        anonymous = _close_code(client, path, None)
        if anonymous != 4401:
            problems.append(f"{path}: nobody got {anonymous!r}, expected close 4401")
        if route.path in STAFF_ONLY_WS:
            refused = _close_code(client, path, bob)
            if refused != 4403:
                problems.append(f"{path}: bob (a researcher) got {refused!r}, expected close 4403")
            staff = _close_code(client, path, resources.admin)
            if staff != "summary":
                problems.append(f"{path}: an admin got {staff!r}, expected the summary")
        elif route.id_params:
            stranger = _close_code(client, path, bob)
            if stranger != 4404:
                problems.append(f"{path}: bob got {stranger!r}, expected close 4404")
            owner = _close_code(client, path, resources.owner)
            if owner != "snapshot":
                problems.append(f"{path}: alice got {owner!r}, expected her snapshot")
        else:
            # A route without an id serves the caller's own items: bob's stream carries none of alice's.
            frames = _frames_until_heartbeat(client, f"{path}?after=0", bob)
            leaked = [f for f in frames if f["type"] != "snapshot" or f.get("unread")]
            if leaked:
                problems.append(f"{path}: bob received {leaked}")
            mine = _frames_until_heartbeat(client, f"{path}?after=0", resources.owner)
            if not [f for f in mine if f["type"] == "notification"]:
                problems.append(f"{path}: alice's own stream lacks her notification: {mine}")
    assert not problems, "\n".join(problems)
