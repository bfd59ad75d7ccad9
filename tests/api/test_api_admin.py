"""Admin endpoints: who may call them, user management, last-admin protection, stats, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_helpers import DEFAULT_PASSWORD, assert_error

ADMIN_CALLS = [
    ("GET", "/api/admin/users", None),
    ("PATCH", "/api/admin/users/1", {"role": "admin"}),
    ("DELETE", "/api/admin/users/1", None),
    ("POST", "/api/admin/users/1/reset-password", None),
    ("GET", "/api/admin/stats", None),
    ("GET", "/api/admin/audit", None),
]


@pytest.mark.parametrize("role", ["researcher", "operator"])
@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
def test_non_admins_get_403(api, client, role, method, path, body):
    account = api.account(f"{role}1", role=role)
    response = client.request(method, path, json=body, headers=account.headers)
    assert_error(response, 403, "forbidden")


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
def test_anonymous_gets_401(client, method, path, body):
    assert_error(client.request(method, path, json=body), 401, "not_authenticated")


def test_api_key_of_an_admin_works_on_admin_routes(api, client):
    admin = api.admin()
    key = client.post("/api/auth/api-keys", json={"name": "ops"}, headers=admin.headers).json()["key"]
    assert client.get("/api/admin/stats", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_list_search_and_paginate_users(api, client):
    for name in ["anna", "annabel", "bert", "carl_x"]:
        api.register(name)
    admin = api.admin()
    everyone = client.get("/api/admin/users", headers=admin.headers).json()
    assert everyone["total"] == 5 and everyone["page"] == 1 and everyone["page_size"] == 20
    assert {
        "id",
        "username",
        "email",
        "role",
        "disabled",
        "created_at",
        "updated_at",
        "last_login_at",
    } <= set(everyone["items"][0])

    found = client.get("/api/admin/users", params={"q": "ANNA"}, headers=admin.headers).json()
    assert sorted(u["username"] for u in found["items"]) == ["anna", "annabel"]
    assert client.get("/api/admin/users", params={"q": "_"}, headers=admin.headers).json()["total"] == 1
    assert client.get("/api/admin/users", params={"q": "%"}, headers=admin.headers).json()["total"] == 0

    page1 = client.get("/api/admin/users", params={"page": 1, "page_size": 2}, headers=admin.headers).json()
    page3 = client.get("/api/admin/users", params={"page": 3, "page_size": 2}, headers=admin.headers).json()
    assert page1["total"] == 5 and len(page1["items"]) == 2 and len(page3["items"]) == 1
    beyond = client.get("/api/admin/users", params={"page": 9, "page_size": 2}, headers=admin.headers).json()
    assert beyond["items"] == [] and beyond["total"] == 5

    admins = client.get("/api/admin/users", params={"role": "admin"}, headers=admin.headers).json()
    assert [u["username"] for u in admins["items"]] == ["admin"]
    for params, field in [
        ({"page": 0}, "query.page"),
        ({"page_size": 101}, "query.page_size"),
        ({"page": "x"}, "query.page"),
        ({"role": "king"}, "query.role"),
    ]:
        assert_error(client.get("/api/admin/users", params=params, headers=admin.headers), 422, field=field)


def test_change_role_disable_enable_and_email(api, client):
    bob = api.account("bob")
    admin = api.admin()
    response = client.patch(f"/api/admin/users/{bob.id}", json={"role": "operator"}, headers=admin.headers)
    assert response.status_code == 200 and response.json()["role"] == "operator"
    assert client.get("/api/auth/me", headers=bob.headers).json()["role"] == "operator"

    assert client.patch(f"/api/admin/users/{bob.id}", json={"disabled": True}, headers=admin.headers).json()[
        "disabled"
    ]
    assert_error(api.login("bob", DEFAULT_PASSWORD), 401)
    assert not client.patch(
        f"/api/admin/users/{bob.id}", json={"disabled": False}, headers=admin.headers
    ).json()["disabled"]
    assert api.login("bob", DEFAULT_PASSWORD).status_code == 200

    response = client.patch(
        f"/api/admin/users/{bob.id}", json={"email": "Bob@New.example"}, headers=admin.headers
    )
    assert response.json()["email"] == "bob@new.example"

    assert_error(
        client.patch(f"/api/admin/users/{bob.id}", json={"role": "king"}, headers=admin.headers),
        422,
        field="body.role",
    )
    assert_error(
        client.patch(f"/api/admin/users/{bob.id}", json={"disabled": "perhaps"}, headers=admin.headers),
        422,
        field="body.disabled",
    )
    assert_error(client.patch("/api/admin/users/99999", json={"role": "admin"}, headers=admin.headers), 404)

    actions = {e["action"] for e in api.audit(admin, actor="admin") if e["target_id"] == str(bob.id)}
    assert {"user.role_changed", "user.disabled", "user.enabled", "user.updated"} <= actions


def test_delete_user(api, client):
    bob = api.account("bob")
    client.post("/api/auth/api-keys", json={"name": "k"}, headers=bob.headers)
    admin = api.admin()
    assert client.delete(f"/api/admin/users/{bob.id}", headers=admin.headers).status_code == 204
    assert client.get("/api/admin/users", params={"q": "bob"}, headers=admin.headers).json()["total"] == 0
    assert_error(client.delete(f"/api/admin/users/{bob.id}", headers=admin.headers), 404)
    entries = api.audit(admin, action="user.deleted")
    assert entries[0]["target_id"] == str(bob.id) and entries[0]["details"]["username"] == "bob"
    # Bob's own audit rows survive, with the actor reference cleared but the name kept.
    bobs = api.audit(admin, actor="bob")
    assert bobs and all(e["actor_id"] is None for e in bobs)


def test_last_admin_and_self_protection(api, client):
    admin = api.admin()
    me = f"/api/admin/users/{admin.id}"
    # The only admin can neither delete, demote nor disable itself.
    assert_error(client.delete(me, headers=admin.headers), 409, "last_admin")
    assert_error(client.patch(me, json={"role": "researcher"}, headers=admin.headers), 409, "last_admin")
    assert_error(client.patch(me, json={"disabled": True}, headers=admin.headers), 409, "last_admin")

    second = api.account("second", role="admin")
    # With two admins, removing oneself is still refused (another admin must do it).
    assert_error(client.delete(me, headers=admin.headers), 409, "cannot_modify_self")
    assert_error(
        client.patch(me, json={"role": "operator"}, headers=admin.headers), 409, "cannot_modify_self"
    )

    # A disabled admin does not count: with `admin` disabled, `second` is the last active admin.
    assert client.patch(me, json={"disabled": True}, headers=second.headers).status_code == 200
    second_url = f"/api/admin/users/{second.id}"
    assert_error(
        client.patch(second_url, json={"role": "operator"}, headers=second.headers), 409, "last_admin"
    )
    assert client.patch(me, json={"disabled": False}, headers=second.headers).status_code == 200
    assert client.patch(me, json={"role": "operator"}, headers=second.headers).status_code == 200
    assert (
        client.get("/api/admin/users", params={"role": "admin"}, headers=second.headers).json()["total"] == 1
    )


def test_reset_password_generated_and_given(api, client):
    bob = api.account("bob")
    admin = api.admin()
    response = client.post(f"/api/admin/users/{bob.id}/reset-password", headers=admin.headers)
    assert response.status_code == 200, response.text
    temporary = response.json()["temporary_password"]
    assert temporary and len(temporary) >= 12
    assert_error(api.login("bob", DEFAULT_PASSWORD), 401)
    assert api.login("bob", temporary).status_code == 200

    response = client.post(
        f"/api/admin/users/{bob.id}/reset-password",
        json={"password": "chosen-by-admin"},
        headers=admin.headers,
    )
    assert response.json() == {"temporary_password": None}
    assert api.login("bob", "chosen-by-admin").status_code == 200
    assert_error(
        client.post(
            f"/api/admin/users/{bob.id}/reset-password", json={"password": "x"}, headers=admin.headers
        ),
        422,
        field="body.password",
    )
    entries = api.audit(admin, action="user.password_reset")
    assert len(entries) == 2 and temporary not in str(entries)


def test_stats(api, client):
    api.account("res1")
    api.account("ops1", role="operator")
    admin = api.admin()
    client.post("/api/auth/api-keys", json={"name": "k"}, headers=admin.headers)
    api.login("res1", "wrong-password")
    stats = client.get("/api/admin/stats", headers=admin.headers).json()
    assert stats["users_total"] == 3
    assert stats["users_by_role"] == {"admin": 1, "operator": 1, "researcher": 1}
    assert stats["users_active"] == 3 and stats["users_disabled"] == 0
    assert stats["api_keys_active"] == 1
    assert stats["logins_last_24h"] >= 3 and stats["failed_logins_last_24h"] == 1
    assert stats["recent_logins"][0]["username"] == "admin"


def test_audit_filters_and_pagination(api, client):
    api.account("alice")
    api.login("alice", "wrong-password")
    admin = api.admin()
    everything = client.get("/api/admin/audit", headers=admin.headers).json()
    assert everything["total"] >= 5
    timestamps = [e["ts"] for e in everything["items"]]
    assert timestamps == sorted(timestamps, reverse=True)

    alice_rows = api.audit(admin, actor="ALICE")
    assert alice_rows and {e["actor_username"] for e in alice_rows} == {"alice"}
    assert {e["action"] for e in alice_rows} >= {
        "user.registered",
        "auth.login_succeeded",
        "auth.login_failed",
    }
    failed = api.audit(admin, action="auth.login_failed")
    assert [e["details"]["account"] for e in failed] == ["alice"]
    assert {e["action"] for e in api.audit(admin, action="auth.")} <= {
        "auth.login_succeeded",
        "auth.login_failed",
        "auth.logout",
        "auth.login_throttled",
        "auth.refresh_reuse_detected",
    }

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert api.audit(admin, since=future) == []
    assert len(api.audit(admin, since=past)) == everything["total"]
    assert api.audit(admin, until=past) == []
    naive_future = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert api.audit(admin, since=naive_future) == []

    page = client.get("/api/admin/audit", params={"page": 2, "page_size": 2}, headers=admin.headers).json()
    assert (
        page["page"] == 2
        and len(page["items"]) == 2
        and page["items"][0]["id"] == everything["items"][2]["id"]
    )
    assert_error(
        client.get("/api/admin/audit", params={"since": "yesterday"}, headers=admin.headers),
        422,
        field="query.since",
    )
