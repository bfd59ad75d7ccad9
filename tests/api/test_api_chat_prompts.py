"""The system prompt library: CRUD, `{{variables}}`, rendering, sharing and who may do what."""

from __future__ import annotations

from api_helpers import Account, Api, assert_error
from fastapi.testclient import TestClient


def _create(client: TestClient, account: Account, **body: object) -> dict[str, object]:
    payload = {"name": "reviewer", "content": "You review {{language}} code for {{ audience }}.", **body}
    response = client.post("/api/chat/prompts", json=payload, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def test_prompt_crud_variables_and_render(client: TestClient, api: Api) -> None:
    alice = api.account("alice")
    prompt = _create(client, alice)
    assert prompt["variables"] == ["language", "audience"]
    assert prompt["editable"] is True and prompt["shared"] is False

    rendered = client.post(
        f"/api/chat/prompts/{prompt['id']}/render",
        json={"variables": {"language": "Rust", "audience": "{{beginners}}", "unused": "x"}},
        headers=alice.headers,
    )
    assert rendered.status_code == 200, rendered.text
    # One pass: a value that looks like a placeholder stays as written.
    assert rendered.json() == {"content": "You review Rust code for {{beginners}}."}

    missing = client.post(
        f"/api/chat/prompts/{prompt['id']}/render",
        json={"variables": {"language": "Go"}},
        headers=alice.headers,
    )
    assert_error(missing, 422, "missing_variables", field="body.variables.audience")

    # Editing the content re-detects the variables.
    updated = client.patch(
        f"/api/chat/prompts/{prompt['id']}",
        json={"content": "Answer in {{tone}}, {{tone}} always.", "name": "tone"},
        headers=alice.headers,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["variables"] == ["tone"] and updated.json()["name"] == "tone"
    assert_error(
        client.patch(f"/api/chat/prompts/{prompt['id']}", json={"content": None}, headers=alice.headers),
        422,
        field="body.content",
    )

    # Names are unique per owner.
    _create(client, alice, name="second", content="plain")
    clash = client.patch(f"/api/chat/prompts/{prompt['id']}", json={"name": "second"}, headers=alice.headers)
    assert_error(clash, 409, "prompt_name_taken", field="body.name")
    duplicate = client.post(
        "/api/chat/prompts", json={"name": "second", "content": "x"}, headers=alice.headers
    )
    assert_error(duplicate, 409, "prompt_name_taken")

    listed = client.get("/api/chat/prompts", params={"q": "tone"}, headers=alice.headers)
    assert [p["id"] for p in listed.json()["items"]] == [prompt["id"]]
    assert client.get("/api/chat/prompts", headers=alice.headers).json()["total"] == 2

    assert client.delete(f"/api/chat/prompts/{prompt['id']}", headers=alice.headers).status_code == 204
    assert_error(
        client.get(f"/api/chat/prompts/{prompt['id']}", headers=alice.headers), 404, "prompt_not_found"
    )

    actions = [entry["action"] for entry in api.audit(api.admin(), action="prompt.")]
    assert actions.count("prompt.created") == 2
    assert "prompt.updated" in actions and "prompt.deleted" in actions


def test_prompt_validation(client: TestClient, api: Api) -> None:
    alice = api.account("alice")
    assert_error(
        client.post("/api/chat/prompts", json={"name": "", "content": "x"}, headers=alice.headers),
        422,
        field="body.name",
    )
    assert_error(
        client.post(
            "/api/chat/prompts", json={"name": "a", "content": "x", "extra": 1}, headers=alice.headers
        ),
        422,
        field="body.extra",
    )


def test_prompts_are_private_unless_shared(client: TestClient, api: Api) -> None:
    alice = api.account("alice")
    bob = api.account("bob")
    private = _create(client, alice, name="private")
    shared = _create(client, alice, name="shared", shared=True)

    # Private: every endpoint answers 404 to someone else.
    for method, path, body in [
        ("GET", f"/api/chat/prompts/{private['id']}", None),
        ("PATCH", f"/api/chat/prompts/{private['id']}", {"name": "mine now"}),
        ("DELETE", f"/api/chat/prompts/{private['id']}", None),
        (
            "POST",
            f"/api/chat/prompts/{private['id']}/render",
            {"variables": {"language": "C", "audience": "x"}},
        ),
    ]:
        response = client.request(method, path, json=body, headers=bob.headers)
        assert_error(response, 404, "prompt_not_found")

    # Shared: readable and renderable, not changeable (403 not_owner), listed under `shared`.
    seen = client.get(f"/api/chat/prompts/{shared['id']}", headers=bob.headers)
    assert seen.status_code == 200 and seen.json()["editable"] is False
    rendered = client.post(
        f"/api/chat/prompts/{shared['id']}/render",
        json={"variables": {"language": "C", "audience": "experts"}},
        headers=bob.headers,
    )
    assert rendered.json()["content"] == "You review C code for experts."
    assert_error(
        client.patch(f"/api/chat/prompts/{shared['id']}", json={"name": "x"}, headers=bob.headers),
        403,
        "not_owner",
    )
    assert_error(client.delete(f"/api/chat/prompts/{shared['id']}", headers=bob.headers), 403, "not_owner")
    bobs = client.get("/api/chat/prompts", headers=bob.headers).json()
    assert [p["id"] for p in bobs["items"]] == [shared["id"]]
    assert client.get("/api/chat/prompts", params={"scope": "mine"}, headers=bob.headers).json()["total"] == 0
    # Bob may use the same name for his own prompt.
    _create(client, bob, name="shared")
