"""Names people type have one bound everywhere (`api.schemas.common.Name`): a 600-character job,
dataset, model, template, prompt, conversation, API key or provider name is a 422 naming the field,
never stored (where it would run a toast off the screen and wrap a table row to ten lines)."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import Api, assert_error

from loraforge.services.platform.owner_names import NAME_MAX_LENGTH

LONG = "n" * 600

# (method, path, body, field): every body is valid but for its long name.
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/jobs", {"name": LONG, "spec": {}}, "body.name"),
    (
        "POST",
        "/api/datasets/uploads",
        {"filename": "a.jsonl", "size": 10, "sha256": "0" * 64, "name": LONG},
        "body.name",
    ),
    (
        "POST",
        "/api/models",
        {"name": LONG, "source": "hub", "ref": "org/model", "download": False},
        "body.name",
    ),
    ("POST", "/api/templates", {"name": LONG, "spec": {}}, "body.name"),
    ("POST", "/api/chat/prompts", {"name": LONG, "content": "Hi"}, "body.name"),
    ("POST", "/api/chat/conversations", {"title": LONG}, "body.title"),
    ("POST", "/api/auth/api-keys", {"name": LONG}, "body.name"),
    ("POST", "/api/providers", {"name": LONG, "base_url": "https://api.example.com/v1"}, "body.name"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), CASES, ids=[c[1] for c in CASES])
def test_a_600_character_name_is_refused_naming_the_field(
    api: Api, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    alice = api.account("alice")
    response = api.client.request(method, path, json=body, headers=alice.headers)
    assert_error(response, 422, "validation_error", field)
    assert LONG not in response.text  # the message names the limit, it does not echo the name back


def test_names_up_to_the_limit_are_kept_and_trimmed(api: Api) -> None:
    alice = api.account("alice")
    longest = "t" * NAME_MAX_LENGTH
    response = api.client.post(
        "/api/templates",
        json={"name": f"  {longest} ", "spec": {"model_name_or_path": "demo-tiny"}},
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == longest
    # Renaming to one character more is refused; the name stays as it was.
    template_id = response.json()["id"]
    too_long = api.client.patch(
        f"/api/templates/{template_id}", json={"name": longest + "t"}, headers=alice.headers
    )
    assert_error(too_long, 422, "validation_error", "body.name")
    assert api.client.get(f"/api/templates/{template_id}", headers=alice.headers).json()["name"] == longest
