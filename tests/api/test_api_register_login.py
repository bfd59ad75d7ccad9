"""Registration rules and login (username or email), the login response and the refresh cookie."""

from __future__ import annotations

import pytest
from api_helpers import DEFAULT_PASSWORD, assert_error


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "ab", "email": "a@example.com", "password": DEFAULT_PASSWORD}, "body.username"),
        ({"username": "x" * 33, "email": "a@example.com", "password": DEFAULT_PASSWORD}, "body.username"),
        ({"username": "bad name!", "email": "a@example.com", "password": DEFAULT_PASSWORD}, "body.username"),
        ({"username": "alice", "email": "not-an-email", "password": DEFAULT_PASSWORD}, "body.email"),
        ({"username": "alice", "email": "a@", "password": DEFAULT_PASSWORD}, "body.email"),
        ({"username": "alice", "email": "a@example.com", "password": "short"}, "body.password"),
        ({"email": "a@example.com", "password": DEFAULT_PASSWORD}, "body.username"),
        ({"username": "alice", "password": DEFAULT_PASSWORD}, "body.email"),
        ({"username": "alice", "email": "a@example.com"}, "body.password"),
        ({"username": 123, "email": "a@example.com", "password": DEFAULT_PASSWORD}, "body.username"),
        (
            {"username": "alice", "email": "a@example.com", "password": DEFAULT_PASSWORD, "role": "admin"},
            "body.role",
        ),
    ],
)
def test_register_rejects_each_bad_field(client, payload, field):
    response = client.post("/api/auth/register", json=payload)
    assert_error(response, 422, "validation_error", field)


def test_register_creates_a_researcher(client):
    response = client.post(
        "/api/auth/register",
        json={"username": "Alice_1-x", "email": "Alice@Example.COM", "password": DEFAULT_PASSWORD},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["username"] == "Alice_1-x"
    assert body["email"] == "alice@example.com"
    assert body["role"] == "researcher"
    assert "password" not in response.text and "password_hash" not in body


def test_register_rejects_taken_username_any_case_and_taken_email(api, client):
    api.register("alice", email="alice@example.com")
    taken_name = client.post(
        "/api/auth/register",
        json={"username": "ALICE", "email": "other@example.com", "password": DEFAULT_PASSWORD},
    )
    name_error = assert_error(taken_name, 409, "username_or_email_taken", "body.username")
    taken_email = client.post(
        "/api/auth/register",
        json={"username": "bob", "email": "ALICE@example.com", "password": DEFAULT_PASSWORD},
    )
    email_error = assert_error(taken_email, 409, "username_or_email_taken", "body.email")
    # One answer for both: it does not tell which of the two exists.
    assert name_error == email_error


def test_registration_can_be_closed(app, client, settings):
    settings.registration_open = False
    response = client.post(
        "/api/auth/register",
        json={"username": "alice", "email": "a@example.com", "password": DEFAULT_PASSWORD},
    )
    assert_error(response, 403, "registration_closed")


@pytest.mark.parametrize("identifier", ["carol", "CAROL", "carol@example.com", "Carol@Example.com"])
def test_login_by_username_or_email(api, identifier):
    user = api.register("carol", email="carol@example.com")
    response = api.login(identifier, DEFAULT_PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    assert body["user"] == {
        "id": user["id"],
        "username": "carol",
        "email": "carol@example.com",
        "role": "researcher",
    }


def test_login_sets_httponly_strict_refresh_cookie_scoped_to_auth(api):
    api.register("dave")
    cookie = api.login("dave", DEFAULT_PASSWORD).headers["set-cookie"]
    parts = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in parts
    assert "samesite=strict" in parts
    assert "path=/api/auth" in parts
    assert not any(part.startswith("max-age") for part in parts), "session cookie without remember me"


def test_remember_me_makes_the_cookie_persistent_for_30_days(api):
    api.register("erin")
    cookie = api.login("erin", DEFAULT_PASSWORD, remember_me=True).headers["set-cookie"].lower()
    assert f"max-age={30 * 24 * 3600}" in cookie


def test_wrong_password_and_unknown_user_get_the_same_401(api):
    api.register("frank")
    wrong = api.login("frank", "wrong-password")
    unknown = api.login("nobody", "wrong-password")
    first = assert_error(wrong, 401, "invalid_credentials")
    second = assert_error(unknown, 401, "invalid_credentials")
    assert first["message"] == second["message"]
    assert wrong.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"password": "x"}, "body.username_or_email"),
        ({"username_or_email": "x"}, "body.password"),
        ({"username_or_email": "x", "password": "y", "remember_me": "maybe"}, "body.remember_me"),
        ({"username_or_email": ["x"], "password": "y"}, "body.username_or_email"),
    ],
)
def test_login_validation(client, payload, field):
    assert_error(client.post("/api/auth/login", json=payload), 422, "validation_error", field)
