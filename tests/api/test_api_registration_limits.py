"""Registration: passwords that are easy to guess are refused, one address may only register so often,
and the answer to a taken name or email does not say which one exists."""

from __future__ import annotations

import pytest
from api_helpers import DEFAULT_PASSWORD, assert_error
from fastapi.testclient import TestClient

from loraforge.app import create_app


def _register(client: TestClient, username: str, password: str = DEFAULT_PASSWORD, email: str | None = None):
    return client.post(
        "/api/auth/register",
        json={"username": username, "email": email or f"{username}@example.com", "password": password},
    )


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("password", "weak_password"),
        ("Password1", "weak_password"),
        ("12345678", "weak_password"),
        ("qwertyuiop", "weak_password"),
        (" " * 8, "weak_password"),
        ("\t" * 8, "invalid_password"),
        ("correct\x00horse-battery", "invalid_password"),
        ("correct-horse\nbattery", "invalid_password"),
        ("carol2024", "weak_password"),  # the username with a year
    ],
)
def test_easy_or_broken_passwords_are_refused(client, password, code):
    error = assert_error(_register(client, "carol", password), 422, code, "body.password")
    assert error["details"][0]["message"]  # says why, for the form to show


def test_a_strong_password_with_spaces_and_symbols_is_accepted(client):
    assert _register(client, "dora", "  tin lantern — otter 7  ").status_code == 201


def test_password_change_and_admin_reset_apply_the_same_rules(api, client):
    alice = api.account("alice")
    weak = client.post(
        "/api/auth/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "password1"},
        headers=alice.headers,
    )
    assert_error(weak, 422, "weak_password", "body.new_password")
    admin = api.admin()
    reset = client.post(
        f"/api/admin/users/{alice.id}/reset-password", json={"password": "iloveyou"}, headers=admin.headers
    )
    assert_error(reset, 422, "weak_password", "body.password")


def test_one_address_may_register_only_so_often(settings, client):
    # The default limit: 40 registrations in a second from one address no longer go through.
    limit = settings.registration_max_per_hour
    for index in range(limit):
        assert _register(client, f"bulk{index}").status_code == 201
    refused = _register(client, "onemore")
    assert_error(refused, 429, "registration_throttled")
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    # Another address is not affected.
    with TestClient(create_app(settings), client=("198.51.100.20", 40000)) as elsewhere:
        assert _register(elsewhere, "elsewhere").status_code == 201


def test_refused_registrations_count_too(settings, client):
    settings.registration_max_per_hour = 3
    assert _register(client, "erin").status_code == 201
    # Probing for taken names spends the same budget as creating accounts.
    assert_error(_register(client, "ERIN", email="x@example.com"), 409, "username_or_email_taken")
    assert_error(_register(client, "fred", email="erin@example.com"), 409, "username_or_email_taken")
    assert_error(_register(client, "gina"), 429, "registration_throttled")
