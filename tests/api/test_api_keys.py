"""Personal API keys: shown once, stored hashed, usable as Bearer, private to their owner."""

from __future__ import annotations

from datetime import timedelta

from api_helpers import assert_error
from sqlalchemy import select

from loraforge.db.base import utcnow
from loraforge.db.models import ApiKey


def _create(client, account, name="laptop", **extra):
    response = client.post("/api/auth/api-keys", json={"name": name, **extra}, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_key_is_shown_once_and_listed_by_prefix_only(api, client, app):
    alice = api.account("alice")
    created = _create(client, alice, expires_in_days=30)
    key = created["key"]
    assert key.startswith("lf_") and len(key) > 40
    assert key.startswith(created["prefix"]) and len(created["prefix"]) < 16
    assert created["expires_at"] is not None

    listed = client.get("/api/auth/api-keys", headers=alice.headers).json()
    assert [item["id"] for item in listed] == [created["id"]]
    assert "key" not in listed[0]
    assert key not in client.get("/api/auth/api-keys", headers=alice.headers).text

    # Only a hash is stored.
    with app.state.db.session() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.id == created["id"]))
        assert row is not None and key not in (row.key_hash, row.prefix) and len(row.key_hash) == 64


def test_key_works_as_bearer_and_stops_working_when_revoked(api, client):
    alice = api.account("alice")
    created = _create(client, alice)
    headers = {"Authorization": f"Bearer {created['key']}"}
    me = client.get("/api/auth/me", headers=headers)
    assert me.status_code == 200 and me.json()["username"] == "alice"
    assert client.get("/api/auth/api-keys", headers=headers).json()[0]["last_used_at"] is not None

    assert client.delete(f"/api/auth/api-keys/{created['id']}", headers=alice.headers).status_code == 204
    assert_error(client.get("/api/auth/me", headers=headers), 401, "invalid_api_key")
    assert client.get("/api/auth/api-keys", headers=alice.headers).json() == []
    assert_error(client.delete(f"/api/auth/api-keys/{created['id']}", headers=alice.headers), 404)


def test_expired_key_is_refused(api, client, app):
    alice = api.account("alice")
    created = _create(client, alice, expires_in_days=1)
    with app.state.db.session() as session:
        row = session.get(ApiKey, created["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    assert_error(
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {created['key']}"}),
        401,
        "api_key_expired",
    )


def test_unknown_or_mangled_keys_are_refused(api, client):
    alice = api.account("alice")
    key = _create(client, alice)["key"]
    for bad in ["lf_nothing", key[:-1] + ("A" if key[-1] != "A" else "B"), key + "x"]:
        assert_error(client.get("/api/auth/me", headers={"Authorization": f"Bearer {bad}"}), 401)


def test_user_b_cannot_see_or_revoke_user_a_keys(api, client):
    alice = api.account("alice")
    bob = api.account("bob")
    created = _create(client, alice)
    assert client.get("/api/auth/api-keys", headers=bob.headers).json() == []
    # The same code as for a key that does not exist: the answer does not tell that the id is taken.
    assert_error(
        client.delete(f"/api/auth/api-keys/{created['id']}", headers=bob.headers), 404, "api_key_not_found"
    )
    # Not even an admin revokes someone else's key through the personal endpoint.
    admin = api.admin()
    assert_error(client.delete(f"/api/auth/api-keys/{created['id']}", headers=admin.headers), 404)
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {created['key']}"}).status_code == 200
    )


def test_key_validation(api, client):
    alice = api.account("alice")
    for payload, field in [
        ({}, "body.name"),
        ({"name": ""}, "body.name"),
        ({"name": "   "}, "body.name"),
        ({"name": "x" * 65}, "body.name"),
        ({"name": "ok", "expires_in_days": 0}, "body.expires_in_days"),
        ({"name": "ok", "expires_in_days": "soon"}, "body.expires_in_days"),
    ]:
        response = client.post("/api/auth/api-keys", json=payload, headers=alice.headers)
        assert_error(response, 422, "validation_error", field)
    assert_error(client.delete("/api/auth/api-keys/abc", headers=alice.headers), 422, field="path.key_id")


def test_key_creation_and_revocation_are_audited(api, client):
    alice = api.account("alice")
    created = _create(client, alice)
    client.delete(f"/api/auth/api-keys/{created['id']}", headers=alice.headers)
    admin = api.admin()
    entries = api.audit(admin, action="api_key.", actor="alice")
    assert {e["action"] for e in entries} == {"api_key.created", "api_key.revoked"}
    assert created["key"] not in str(entries)
