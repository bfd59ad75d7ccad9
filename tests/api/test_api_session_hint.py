"""The readable "signed in" hint that rides with the refresh cookie (see `SESSION_HINT_COOKIE`).

The web app probes /refresh at start-up only when the hint is there, so it must appear and vanish
exactly with the refresh cookie, and must carry no secret.
"""

from __future__ import annotations

from api_helpers import DEFAULT_PASSWORD

HINT = "loraforge_signed_in"
REFRESH = "loraforge_refresh"


def _cookie(response, name: str) -> list[str]:
    """The Set-Cookie header for `name`, split into lower-case attributes."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return [part.strip().lower() for part in header.split(";")]
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers.get_list('set-cookie')}")


def test_hint_follows_the_refresh_cookie(api, client):
    api.register("alice")

    login = api.login("alice", DEFAULT_PASSWORD)
    hint = _cookie(login, HINT)
    assert hint[0] == f"{HINT}=1"
    assert "httponly" not in hint  # the page must read it
    assert "path=/" in hint and "samesite=strict" in hint
    assert not any(part.startswith("max-age") for part in hint), "a session cookie, like the refresh one"
    assert "httponly" in _cookie(login, REFRESH)

    # Remember me: both persist for the same time.
    remembered = api.login("alice", DEFAULT_PASSWORD, remember_me=True)
    max_age = [p for p in _cookie(remembered, REFRESH) if p.startswith("max-age")]
    assert max_age and max_age == [p for p in _cookie(remembered, HINT) if p.startswith("max-age")]

    # A refresh renews it; a logout clears it with the refresh cookie.
    refreshed = client.post("/api/auth/refresh")
    assert refreshed.status_code == 200, refreshed.text
    assert _cookie(refreshed, HINT)[0] == f"{HINT}=1"
    logout = client.post("/api/auth/logout")
    assert logout.status_code == 204
    assert any(p == "max-age=0" or p.startswith("expires=") for p in _cookie(logout, HINT))
    assert any(p == "max-age=0" or p.startswith("expires=") for p in _cookie(logout, REFRESH))
