"""The routes that the refresh cookie alone authenticates refuse a page of another origin (403)."""

from __future__ import annotations

import pytest
from api_helpers import DEFAULT_PASSWORD, assert_error
from fastapi.testclient import TestClient

COOKIE = "loraforge_refresh"


def _with_cookie(client: TestClient, path: str, cookie: str, origin: str | None):
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie)
    headers = {"Origin": origin} if origin is not None else {}
    response = client.post(path, headers=headers)
    client.cookies.clear()
    return response


@pytest.mark.parametrize("origin", ["http://evil.example", "http://testserver.evil.example", "null"])
@pytest.mark.parametrize("path", ["/api/auth/refresh", "/api/auth/logout"])
def test_a_foreign_origin_is_refused_and_changes_nothing(api, client, path, origin):
    api.register("alice")
    login = api.login("alice", DEFAULT_PASSWORD)
    cookie = login.cookies[COOKIE]
    assert_error(_with_cookie(client, path, cookie, origin), 403, "cross_origin")
    # The session was neither rotated nor ended: the same cookie still refreshes, and its token works.
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.status_code == 200
    assert _with_cookie(client, "/api/auth/refresh", cookie, None).status_code == 200


@pytest.mark.parametrize("origin", [None, "http://testserver", "http://TestServer:80"])
def test_this_servers_origin_or_none_is_accepted(api, client, origin):
    api.register("alice")
    cookie = api.login("alice", DEFAULT_PASSWORD).cookies[COOKIE]
    refreshed = _with_cookie(client, "/api/auth/refresh", cookie, origin)
    assert refreshed.status_code == 200, refreshed.text
    assert _with_cookie(client, "/api/auth/logout", refreshed.cookies[COOKIE], origin).status_code == 204


def test_origin_is_compared_with_the_host_the_request_was_sent_to(api, client):
    api.register("alice")
    cookie = api.login("alice", DEFAULT_PASSWORD).cookies[COOKIE]

    def post(path: str, origin: str):
        client.cookies.clear()
        client.cookies.set(COOKIE, cookie)
        response = client.post(path, headers={"Host": "127.0.0.1:8000", "Origin": origin})
        client.cookies.clear()
        return response

    assert_error(post("/api/auth/refresh", "http://127.0.0.1:5173"), 403, "cross_origin")
    assert_error(post("/api/auth/logout", "http://localhost:8000"), 403, "cross_origin")
    # Behind a TLS proxy the server itself sees plain HTTP: the scheme is not compared, host and port are.
    assert post("/api/auth/refresh", "https://127.0.0.1:8000").status_code == 200
