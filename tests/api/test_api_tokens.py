"""Access tokens that must be refused: tampered, alg none, expired, wrong kind, disabled/deleted users."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from api_helpers import assert_error


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _get_me(client, token: str):
    return client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})


def _claims(user_id: int, **overrides):
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "sid": "some-login-session",
        "iss": "loraforge",
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(overrides)
    return claims


def test_valid_token_works(api, client):
    alice = api.account("alice")
    assert _get_me(client, alice.token).status_code == 200


def test_tampered_signature(api, client):
    alice = api.account("alice")
    header, payload, signature = alice.token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert_error(_get_me(client, f"{header}.{payload}.{flipped}"), 401, "invalid_token")


def test_tampered_payload_keeps_no_privilege(api, client):
    alice = api.account("alice")
    admin = api.admin()
    header, _payload, signature = alice.token.split(".")
    forged_payload = _b64(
        {"sub": str(admin.id), "iss": "loraforge", "typ": "access", "iat": 1, "exp": 4_000_000_000}
    )
    assert_error(_get_me(client, f"{header}.{forged_payload}.{signature}"), 401, "invalid_token")


def test_alg_none(api, client):
    alice = api.account("alice")
    payload = json.loads(base64.urlsafe_b64decode(alice.token.split(".")[1] + "=="))
    for alg in ["none", "None", "NONE"]:
        token = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(payload)}."
        assert_error(_get_me(client, token), 401, "invalid_token")


def test_other_key_and_other_algorithm(api, client, settings):
    alice = api.account("alice")
    assert_error(
        _get_me(client, jwt.encode(_claims(alice.id), "another-key-" + "y" * 32, algorithm="HS256")), 401
    )
    secret = settings.signing_key()
    assert_error(
        _get_me(client, jwt.encode(_claims(alice.id), secret * 2, algorithm="HS512")), 401, "invalid_token"
    )


def test_expired_token(api, client, settings):
    alice = api.account("alice")
    past = datetime.now(UTC) - timedelta(hours=1)
    token = jwt.encode(
        _claims(alice.id, iat=past, exp=past + timedelta(minutes=1)),
        settings.signing_key(),
        algorithm="HS256",
    )
    assert_error(_get_me(client, token), 401, "token_expired")


@pytest.mark.parametrize(
    "overrides",
    [{"typ": "refresh"}, {"iss": "someone-else"}, {"sub": "not-a-number"}, {"exp": None}],
)
def test_wrong_claims(api, client, settings, overrides):
    alice = api.account("alice")
    claims = {k: v for k, v in _claims(alice.id, **overrides).items() if v is not None}
    assert_error(_get_me(client, jwt.encode(claims, settings.signing_key(), algorithm="HS256")), 401)


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic YWxpY2U6cGFzc3dvcmQ=", "Bearer not.a.jwt", "Bearer abc"]
)
def test_missing_or_malformed_authorization(client, header):
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/api/auth/me", headers=headers)
    assert_error(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_disabled_user_token_is_refused(api, client):
    alice = api.account("alice")
    admin = api.admin()
    assert (
        client.patch(
            f"/api/admin/users/{alice.id}", json={"disabled": True}, headers=admin.headers
        ).status_code
        == 200
    )
    assert_error(_get_me(client, alice.token), 401, "account_disabled")
    assert_error(api.login("alice", alice.password), 401, "invalid_credentials")


def test_deleted_user_token_and_key_are_refused(api, client):
    alice = api.account("alice")
    key = client.post("/api/auth/api-keys", json={"name": "k"}, headers=alice.headers).json()["key"]
    admin = api.admin()
    assert client.delete(f"/api/admin/users/{alice.id}", headers=admin.headers).status_code == 204
    assert_error(_get_me(client, alice.token), 401, "invalid_token")
    assert_error(_get_me(client, key), 401, "invalid_api_key")
