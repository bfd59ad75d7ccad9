"""What the browser tests share: new accounts, logging in, API headers for set-up calls, the console watch
and screenshots. (A module rather than conftest.py: test files import it by name, as tests/api does
with api_helpers.)
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Error, Page, expect

RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def login(page: Page, username: str, password: str) -> None:
    """Log in through the login page; it leads to the dashboard."""
    page.goto("/login")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def register_and_login(page: Page, prefix: str, password: str) -> str:
    """A new researcher (registered through the API), logged in in the browser; returns the username."""
    username = unique(prefix)
    response = page.request.post(
        "/api/auth/register",
        data={"username": username, "email": f"{username}@example.com", "password": password},
    )
    assert response.status == 201, response.text()
    # The browser first: an API login through page.request shares its cookies, and /login would
    # then go straight on to the dashboard.
    login(page, username, password)
    return username


def api_headers(page: Page, username: str, password: str) -> dict[str, str]:
    """Bearer headers for the user's set-up calls through `page.request`."""
    answer = page.request.post(
        "/api/auth/login", data={"username_or_email": username, "password": password, "remember_me": False}
    )
    assert answer.ok, answer.text()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def watch_console(page: Page) -> list[str]:
    """Every console error and uncaught exception of the page from now on, with the URL it happened at
    (the list fills while the test runs; a test asserts it empty where the app must have logged nothing)."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{page.url}: {message.text}")

    def on_page_error(error: Error) -> None:
        errors.append(f"{page.url}: uncaught {error}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return errors


def shot(page: Page, name: str) -> None:
    """A full-page screenshot in test-results/ (what a reviewer looks at after a run)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS_DIR / f"{name}.png"), full_page=True)
