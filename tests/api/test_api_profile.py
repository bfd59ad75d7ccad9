"""The signed-in user's own profile and password; nobody else's."""

from __future__ import annotations

from api_helpers import DEFAULT_PASSWORD, assert_error

COOKIE = "loraforge_refresh"


def _post_with_cookie(client, path, token):
    client.cookies.clear()
    client.cookies.set(COOKIE, token)
    return client.post(path)


def test_me_returns_the_caller(api, client):
    alice = api.account("alice")
    body = client.get("/api/auth/me", headers=alice.headers).json()
    assert body["id"] == alice.id
    assert body["username"] == "alice"
    assert body["role"] == "researcher"
    assert body["last_login_at"] is not None


def test_patch_me_changes_email_and_username(api, client):
    alice = api.account("alice")
    response = client.patch(
        "/api/auth/me", json={"email": "New@Example.com", "username": "alice2"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "new@example.com"
    assert response.json()["username"] == "alice2"
    assert api.login("alice2", DEFAULT_PASSWORD).status_code == 200
    admin = api.admin()
    assert api.audit(admin, action="user.profile_updated", actor="alice2")


def test_patch_me_validates_and_refuses_taken_values(api, client):
    api.register("bob", email="bob@example.com")
    alice = api.account("alice")
    assert_error(
        client.patch("/api/auth/me", json={"email": "nope"}, headers=alice.headers), 422, field="body.email"
    )
    assert_error(
        client.patch("/api/auth/me", json={"username": "a"}, headers=alice.headers),
        422,
        field="body.username",
    )
    assert_error(
        client.patch("/api/auth/me", json={"email": "bob@example.com"}, headers=alice.headers),
        409,
        "email_taken",
    )
    assert_error(
        client.patch("/api/auth/me", json={"username": "BOB"}, headers=alice.headers), 409, "username_taken"
    )
    assert_error(
        client.patch("/api/auth/me", json={"role": "admin"}, headers=alice.headers), 422, field="body.role"
    )


def test_user_b_cannot_edit_user_a(api, client):
    alice = api.account("alice")
    bob = api.account("bob")
    # The only way to address another user's profile is the admin API, which bob may not use.
    assert_error(
        client.patch(f"/api/admin/users/{alice.id}", json={"email": "x@example.com"}, headers=bob.headers),
        403,
    )
    assert_error(client.post(f"/api/admin/users/{alice.id}/reset-password", headers=bob.headers), 403)
    # PATCH /me from bob only ever touches bob.
    client.patch("/api/auth/me", json={"email": "bob2@example.com"}, headers=bob.headers)
    assert client.get("/api/auth/me", headers=alice.headers).json()["email"] == "alice@example.com"


def test_change_password(api, client):
    alice = api.account("alice")
    wrong = client.post(
        "/api/auth/me/password",
        json={"current_password": "not-it", "new_password": "another-password"},
        headers=alice.headers,
    )
    assert_error(wrong, 422, "wrong_password", "body.current_password")
    short = client.post(
        "/api/auth/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "x"},
        headers=alice.headers,
    )
    assert_error(short, 422, "validation_error", "body.new_password")

    other_session = api.login("alice", DEFAULT_PASSWORD).cookies[COOKIE]
    this_session = api.login("alice", DEFAULT_PASSWORD).cookies[COOKIE]
    client.cookies.clear()
    client.cookies.set(COOKIE, this_session)
    response = client.post(
        "/api/auth/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "another-password"},
        headers=alice.headers,
    )
    assert response.status_code == 204, response.text
    assert api.login("alice", DEFAULT_PASSWORD).status_code == 401
    assert api.login("alice", "another-password").status_code == 200
    client.cookies.clear()
    assert _post_with_cookie(client, "/api/auth/refresh", other_session).status_code == 401
    client.cookies.clear()
    assert _post_with_cookie(client, "/api/auth/refresh", this_session).status_code == 200
    admin = api.admin()
    assert api.audit(admin, action="user.password_changed", actor="alice")
