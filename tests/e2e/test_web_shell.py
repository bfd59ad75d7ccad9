"""The web shell in a real browser against a real server."""

from __future__ import annotations

import re

import pytest
from browser_helpers import login, unique
from playwright.sync_api import Page, Request, Route, expect

pytestmark = pytest.mark.e2e

USER_PASSWORD = "e2e-user-password"


def _choose_dropdown_option(page: Page, test_id: str) -> None:
    # Element Plus teleports dropdowns to <body>; only the open one is visible.
    page.get_by_test_id(test_id).locator("visible=true").click()


def test_user_journey(page: Page, admin_credentials: tuple[str, str]) -> None:
    username = unique("alice")

    # Unauthenticated visitors land on the login page.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))

    # Register; the form validates before submitting.
    page.get_by_test_id("go-register").click()
    page.get_by_test_id("register-username").fill("x")
    page.get_by_test_id("register-submit").click()
    expect(page.get_by_text("3–32 characters")).to_be_visible()
    # A server-side error (the admin's name is taken) shows on the fields; it does not say which of
    # username and email exists.
    page.get_by_test_id("register-username").fill(admin_credentials[0])
    page.get_by_test_id("register-email").fill(f"{username}@example.com")
    page.get_by_test_id("register-password").fill(USER_PASSWORD)
    page.get_by_test_id("register-confirm").fill(USER_PASSWORD)
    page.get_by_test_id("register-submit").click()
    expect(page.get_by_text("this username or email cannot be used").first).to_be_visible()
    page.get_by_test_id("register-username").fill(username)
    # The server's password rules are shown on the field: a common password is refused with its reason.
    page.get_by_test_id("register-password").fill("password123")
    page.get_by_test_id("register-confirm").fill("password123")
    page.get_by_test_id("register-submit").click()
    expect(page.get_by_text("This password is too easy to guess")).to_be_visible()
    page.get_by_test_id("register-password").fill(USER_PASSWORD)
    page.get_by_test_id("register-confirm").fill(USER_PASSWORD)
    page.get_by_test_id("register-submit").click()

    # Registered means signed in: straight to the dashboard, which leads a new user to a first run, has
    # real panels (the queue, this machine) and no admin section for a researcher.
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_test_id("dashboard-welcome")).to_contain_text(username)
    expect(page.get_by_test_id("dashboard-first-run").get_by_test_id("train-demo")).to_be_visible()
    expect(page.get_by_test_id("dashboard-new-job")).to_be_visible()
    expect(page.get_by_test_id("dashboard-upload-dataset")).to_be_visible()
    expect(page.get_by_test_id("dashboard-queue-position")).to_have_text("None of your jobs is waiting.")
    expect(page.get_by_test_id("dashboard-host-cpu")).to_contain_text("cores")
    expect(page.get_by_test_id("dashboard-host-no-gpu")).to_be_visible()
    expect(page.get_by_text("Coming soon")).to_have_count(0)
    expect(page.get_by_test_id("nav-profile")).to_be_visible()
    expect(page.get_by_test_id("nav-admin-users")).to_have_count(0)

    # Language: switch to Chinese.
    page.get_by_test_id("locale-switch").click()
    _choose_dropdown_option(page, "locale-option-zh-CN")
    expect(page.get_by_test_id("page-title")).to_have_text("仪表盘")
    expect(page.get_by_test_id("nav-profile")).to_contain_text("个人资料")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

    # Theme: switch to dark.
    expect(page.locator("html")).not_to_have_class(re.compile(r"\bdark\b"))
    page.get_by_test_id("theme-toggle").click()
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))

    # A reload keeps the session (refresh cookie) and both preferences (localStorage).
    page.reload()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_test_id("dashboard-welcome")).to_contain_text(username)
    expect(page.get_by_test_id("page-title")).to_have_text("仪表盘")
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))

    # Back to English for the rest.
    page.get_by_test_id("locale-switch").click()
    _choose_dropdown_option(page, "locale-option-en")
    expect(page.get_by_test_id("page-title")).to_have_text("Dashboard")

    # Create an API key: the full key is shown once.
    page.get_by_test_id("nav-profile").click()
    expect(page).to_have_url(re.compile(r"/profile$"))
    page.get_by_test_id("api-key-create").click()
    page.get_by_test_id("api-key-create-submit").click()
    expect(page.get_by_text("Name is required")).to_be_visible()
    page.get_by_test_id("api-key-name").fill("e2e-key")
    page.get_by_test_id("api-key-create-submit").click()
    secret_input = page.get_by_test_id("api-key-secret")
    expect(secret_input).to_be_visible()
    secret = secret_input.input_value()
    assert len(secret) >= 20, secret

    # The key works as a bearer token.
    me = page.request.get("/api/auth/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status == 200, me.text()
    assert me.json()["username"] == username

    # Close the dialog: the list shows only the prefix, never the full key.
    page.get_by_test_id("api-key-created-close").click()
    expect(page.get_by_test_id("api-key-created-dialog")).to_be_hidden()
    prefix_cell = page.get_by_test_id("api-key-prefix-e2e-key")
    expect(prefix_cell).to_be_visible()
    prefix = prefix_cell.inner_text().rstrip("…")
    assert prefix and secret.startswith(prefix) and len(prefix) < len(secret)
    assert secret not in page.content()
    page.reload()
    expect(page.get_by_test_id("api-key-prefix-e2e-key")).to_be_visible()
    assert secret not in page.content()

    # Log out: back to login, and a reload does not bring the session back.
    page.get_by_test_id("user-menu").click()
    _choose_dropdown_option(page, "logout")
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login\?redirect="))


def test_admin_changes_a_users_role(page: Page, admin_credentials: tuple[str, str]) -> None:
    username = unique("bob")
    registered = page.request.post(
        "/api/auth/register",
        data={"username": username, "email": f"{username}@example.com", "password": USER_PASSWORD},
    )
    assert registered.status == 201, registered.text()

    login(page, *admin_credentials)
    page.get_by_test_id("nav-admin-users").click()
    expect(page).to_have_url(re.compile(r"/admin/users$"))
    expect(page.get_by_test_id("admin-stats")).to_be_visible()

    page.get_by_test_id("user-search").fill(username)
    page.get_by_test_id("user-search-submit").click()
    expect(page.get_by_test_id(f"user-row-{username}")).to_be_visible()
    role_select = page.get_by_test_id(f"role-select-{username}")
    expect(role_select).to_contain_text("Researcher")

    role_select.click()
    _choose_dropdown_option(page, "role-option-operator")
    expect(page.get_by_text(f"Role of {username} changed to Operator")).to_be_visible()

    # The change is the server's truth, not just the widget's: it survives a reload.
    page.reload()
    page.get_by_test_id("user-search").fill(username)
    page.get_by_test_id("user-search-submit").click()
    expect(page.get_by_test_id(f"role-select-{username}")).to_contain_text("Operator")

    # And the audit log recorded it.
    page.get_by_test_id("nav-admin-audit").click()
    expect(page).to_have_url(re.compile(r"/admin/audit$"))
    expect(page.get_by_test_id("audit-table")).to_contain_text("user.role_changed")


def test_expired_token_is_refreshed_once_and_requests_replayed(
    page: Page, admin_credentials: tuple[str, str]
) -> None:
    """Two requests that fail with 401 together share one refresh, then both are replayed."""
    login(page, *admin_credentials)

    # Answer the first call to each admin endpoint with 401, as the server does for an expired
    # access token; later calls reach the real server.
    rejected: set[str] = set()

    def expire_once(route: Route) -> None:
        path = route.request.url.split("?", 1)[0]
        if path in rejected:
            route.continue_()
            return
        rejected.add(path)
        route.fulfill(
            status=401,
            content_type="application/json",
            body='{"error": {"code": "token_expired", "message": "access token expired", "details": []}}',
        )

    refreshes: list[str] = []

    def count_refresh(request: Request) -> None:
        if request.url.endswith("/api/auth/refresh"):
            refreshes.append(request.url)

    page.on("request", count_refresh)
    page.route("**/api/admin/**", expire_once)

    # The users page loads the user list, the stats and the prices at the same time.
    page.get_by_test_id("nav-admin-users").click()
    expect(page.get_by_test_id(f"user-row-{admin_credentials[0]}")).to_be_visible()
    expect(page.get_by_test_id("stat-total")).to_contain_text(re.compile(r"[1-9]"))
    assert {path.rsplit("/api/", 1)[1] for path in rejected} == {
        "admin/users",
        "admin/stats",
        "admin/usage/prices",
    }
    assert len(refreshes) == 1, refreshes

    # The rotated refresh cookie still works: a reload keeps the session.
    page.unroute("**/api/admin/**")
    page.reload()
    expect(page.get_by_test_id(f"user-row-{admin_credentials[0]}")).to_be_visible()
