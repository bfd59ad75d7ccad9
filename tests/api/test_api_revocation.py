"""Credentials die when they should: an access token with its login session (logout, refresh-token
reuse, a password change or reset), over HTTP and WebSocket; API keys when the password change or
reset asks for it (an admin reset does by default)."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import DEFAULT_PASSWORD, Account, Api, assert_error
from fastapi.testclient import TestClient
from job_helpers import sample_dataset, tiny_spec
from starlette.websockets import WebSocketDisconnect

from loraforge.api import ws_auth

COOKIE = "loraforge_refresh"
NEW_PASSWORD = "granite-otter-lantern"


def _me(client: TestClient, token: str) -> Any:
    return client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})


def _session(api: Api, username: str) -> tuple[str, str]:
    """A fresh login of `username`: (access token, refresh cookie)."""
    response = api.login(username, DEFAULT_PASSWORD)
    assert response.status_code == 200, response.text
    return response.json()["access_token"], response.cookies[COOKIE]


def _post_with_cookie(client: TestClient, path: str, cookie: str, **kwargs: Any) -> Any:
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie)
    response = client.post(path, **kwargs)
    client.cookies.clear()
    return response


def _api_key(client: TestClient, account: Account) -> str:
    response = client.post("/api/auth/api-keys", json={"name": "script"}, headers=account.headers)
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def test_logout_ends_the_sessions_access_token(api, client):
    api.register("alice")
    token, cookie = _session(api, "alice")
    other_token, _ = _session(api, "alice")
    assert _me(client, token).status_code == 200
    assert _post_with_cookie(client, "/api/auth/logout", cookie).status_code == 204
    assert_error(_me(client, token), 401, "session_revoked")
    # Another login of the same user is another session: it goes on.
    assert _me(client, other_token).status_code == 200


def test_refresh_token_reuse_ends_the_familys_access_tokens(api, client):
    api.register("alice")
    first_token, old_cookie = _session(api, "alice")
    rotated = _post_with_cookie(client, "/api/auth/refresh", old_cookie)
    assert rotated.status_code == 200, rotated.text
    rotated_token = rotated.json()["access_token"]
    assert _me(client, rotated_token).status_code == 200
    assert_error(_post_with_cookie(client, "/api/auth/refresh", old_cookie), 401, "refresh_token_reused")
    # Whoever holds an access token of that family (thief or owner) has to log in again.
    assert_error(_me(client, first_token), 401, "session_revoked")
    assert_error(_me(client, rotated_token), 401, "session_revoked")


def test_password_change_ends_other_sessions_access_tokens_but_not_this_one(api, client):
    alice = api.account("alice")
    other_token, _ = _session(api, "alice")
    key = _api_key(client, alice)
    client.cookies.clear()  # the jar holds the other login's cookie; this request is alice's first session
    response = client.post(
        "/api/auth/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=alice.headers,
    )
    assert response.status_code == 204, response.text
    assert_error(_me(client, other_token), 401, "session_revoked")
    assert _me(client, alice.token).status_code == 200
    # Keys stay unless asked: a routine change does not break the user's scripts.
    assert _me(client, key).status_code == 200


def test_password_change_can_revoke_the_api_keys(api, client):
    alice = api.account("alice")
    key = _api_key(client, alice)
    response = client.post(
        "/api/auth/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD, "revoke_api_keys": True},
        headers=alice.headers,
    )
    assert response.status_code == 204, response.text
    assert_error(_me(client, key), 401, "invalid_api_key")
    assert client.get("/api/auth/api-keys", headers=alice.headers).json() == []
    admin = api.admin()
    [entry] = api.audit(admin, action="user.password_changed", actor="alice")
    assert entry["details"]["api_keys_revoked"] == 1


def test_admin_reset_ends_access_tokens_and_api_keys_by_default(api, client):
    alice = api.account("alice")
    key = _api_key(client, alice)
    admin = api.admin()
    response = client.post(f"/api/admin/users/{alice.id}/reset-password", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert_error(_me(client, alice.token), 401, "session_revoked")
    assert_error(_me(client, key), 401, "invalid_api_key")


def test_admin_reset_may_keep_the_api_keys(api, client):
    alice = api.account("alice")
    key = _api_key(client, alice)
    admin = api.admin()
    response = client.post(
        f"/api/admin/users/{alice.id}/reset-password",
        json={"password": NEW_PASSWORD, "revoke_api_keys": False},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert_error(_me(client, alice.token), 401, "session_revoked")
    assert _me(client, key).status_code == 200


def test_a_logged_out_token_cannot_open_a_websocket(api, client):
    api.register("alice")
    token, cookie = _session(api, "alice")
    with client.websocket_connect("/ws/notifications", subprotocols=["loraforge.bearer", token]) as ws:
        assert ws.receive_json()["type"] == "snapshot"
    assert _post_with_cookie(client, "/api/auth/logout", cookie).status_code == 204
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/ws/notifications", subprotocols=["loraforge.bearer", token]) as ws,
    ):
        ws.receive_json()
    assert closed.value.code == 4401


@pytest.mark.parametrize("path", ["/ws/notifications", "/ws/jobs/{job_id}"])
def test_an_open_websocket_is_closed_once_its_session_is_revoked(api, client, monkeypatch, path):
    monkeypatch.setattr(ws_auth, "CREDENTIAL_RECHECK_SECONDS", 0.2)
    # Heartbeats every 50 ms: without the re-check the loop below ends (no close) in a few seconds.
    monkeypatch.setattr(client.app.state.settings, "ws_heartbeat_seconds", 0.05)
    alice = api.account("alice")
    spec = tiny_spec(sample_dataset(client, alice)["id"])
    job = client.post("/api/jobs", json={"name": "j", "spec": spec}, headers=alice.headers)
    assert job.status_code == 201, job.text
    token, cookie = _session(api, "alice")
    url = path.format(job_id=job.json()["id"])
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(url, subprotocols=["loraforge.bearer", token]) as ws,
    ):
        assert ws.receive_json()["type"] == "snapshot"
        assert _post_with_cookie(client, "/api/auth/logout", cookie).status_code == 204
        for _ in range(100):  # heartbeats may come first; the close must follow within a second
            ws.receive_json()
    assert closed.value.code == 4401
