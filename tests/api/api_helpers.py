"""Helpers for API tests (imported by conftest and tests; tests/api is on sys.path)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-password-for-tests"
DEFAULT_PASSWORD = "correct-horse-battery"


def assert_error(
    response: httpx.Response, status: int, code: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """The response is the error shape with `status`, and names `code` / `field` when given."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert field in [detail.get("field") for detail in error["details"]], error
    assert "Traceback" not in response.text
    return error


@dataclass
class Account:
    id: int
    username: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    """Small helpers over the TestClient so tests read as user stories."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self._counter = 0

    def register(
        self, username: str | None = None, *, email: str | None = None, password: str = DEFAULT_PASSWORD
    ) -> dict[str, Any]:
        self._counter += 1
        username = username or f"user{self._counter}"
        email = email or f"{username.lower()}@example.com"
        response = self.client.post(
            "/api/auth/register", json={"username": username, "email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        return response.json()

    def login(
        self,
        username_or_email: str,
        password: str,
        *,
        remember_me: bool = False,
        client: TestClient | None = None,
    ) -> httpx.Response:
        return (client or self.client).post(
            "/api/auth/login",
            json={"username_or_email": username_or_email, "password": password, "remember_me": remember_me},
        )

    def account(
        self, username: str | None = None, *, password: str = DEFAULT_PASSWORD, role: str | None = None
    ) -> Account:
        """Register and log in a user (optionally given a role by the admin)."""
        user = self.register(username, password=password)
        if role is not None and role != user["role"]:
            response = self.client.patch(
                f"/api/admin/users/{user['id']}", json={"role": role}, headers=self.admin().headers
            )
            assert response.status_code == 200, response.text
        response = self.login(user["username"], password)
        assert response.status_code == 200, response.text
        return Account(user["id"], user["username"], user["email"], password, response.json()["access_token"])

    def admin(self) -> Account:
        response = self.login(ADMIN_USERNAME, ADMIN_PASSWORD)
        assert response.status_code == 200, response.text
        body = response.json()
        return Account(
            body["user"]["id"], ADMIN_USERNAME, body["user"]["email"], ADMIN_PASSWORD, body["access_token"]
        )

    def audit(self, admin: Account, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get(
            "/api/admin/audit", params={"page_size": 100, **params}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items
