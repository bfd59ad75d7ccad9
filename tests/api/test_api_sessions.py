"""Refresh rotation, reuse detection (revokes the family), logout."""

from __future__ import annotations

from api_helpers import DEFAULT_PASSWORD, assert_error
from fastapi.testclient import TestClient

COOKIE = "loraforge_refresh"


def _post_with_cookie(client, path, token):
    client.cookies.clear()
    client.cookies.set(COOKIE, token)
    return client.post(path)


def _refresh_with(client: TestClient, token: str):
    client.cookies.clear()
    return _post_with_cookie(client, "/api/auth/refresh", token)


def test_refresh_rotates_the_cookie_and_returns_a_working_access_token(api, client):
    api.register("alice")
    first = api.login("alice", DEFAULT_PASSWORD)
    old = first.cookies[COOKIE]
    response = client.post("/api/auth/refresh")
    assert response.status_code == 200, response.text
    new = response.cookies[COOKIE]
    assert new and new != old
    body = response.json()
    assert body["user"]["username"] == "alice"
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200


def test_reusing_a_used_refresh_token_revokes_the_whole_family(api, client):
    api.register("alice")
    old = api.login("alice", DEFAULT_PASSWORD).cookies[COOKIE]
    rotated = _refresh_with(client, old)
    assert rotated.status_code == 200
    newer = rotated.cookies[COOKIE]

    # A thief replays the old token: refused, and the legitimate newer token dies with it.
    assert_error(_refresh_with(client, old), 401, "refresh_token_reused")
    assert_error(_refresh_with(client, newer), 401, "invalid_refresh_token")

    admin = api.admin()
    assert [
        e for e in api.audit(admin, action="auth.refresh_reuse_detected") if e["actor_username"] == "alice"
    ]


def test_reuse_does_not_touch_other_sessions(api, client):
    api.register("alice")
    session_a = api.login("alice", DEFAULT_PASSWORD).cookies[COOKIE]
    session_b = api.login("alice", DEFAULT_PASSWORD).cookies[COOKIE]
    assert _refresh_with(client, session_a).status_code == 200
    assert _refresh_with(client, session_a).status_code == 401
    assert _refresh_with(client, session_b).status_code == 200


def test_refresh_without_or_with_garbage_cookie(client):
    client.cookies.clear()
    assert_error(client.post("/api/auth/refresh"), 401, "missing_refresh_token")
    assert_error(_refresh_with(client, "garbage"), 401, "invalid_refresh_token")


def test_logout_revokes_the_session_and_clears_the_cookie(api, client):
    account = api.account("alice")
    token = api.login("alice", DEFAULT_PASSWORD).cookies[COOKIE]
    response = _post_with_cookie(client, "/api/auth/logout", token)
    assert response.status_code == 204
    assert COOKIE in response.headers.get("set-cookie", "")
    assert (
        "Max-Age=0" in response.headers["set-cookie"] or "expires=" in response.headers["set-cookie"].lower()
    )
    assert_error(_refresh_with(client, token), 401)
    # Logging out twice, or without a cookie, is harmless.
    client.cookies.clear()
    assert client.post("/api/auth/logout").status_code == 204
    admin = api.admin()
    assert [e for e in api.audit(admin, action="auth.logout") if e["actor_id"] == account.id]


def test_refresh_for_a_disabled_user_is_refused(api, client):
    user = api.register("alice")
    token = api.login("alice", DEFAULT_PASSWORD).cookies[COOKIE]
    admin = api.admin()
    assert (
        client.patch(
            f"/api/admin/users/{user['id']}", json={"disabled": True}, headers=admin.headers
        ).status_code
        == 200
    )
    assert_error(_refresh_with(client, token), 401)
