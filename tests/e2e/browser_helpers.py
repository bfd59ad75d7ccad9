"""What the browser tests share: new accounts, logging in, API headers for set-up calls, the console watch
and screenshots. (A module rather than conftest.py: test files import it by name, as tests/api does
with api_helpers.)
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Error, Locator, Page, expect

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
    expect(page.get_by_test_id("dashboard")).to_be_visible()


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


def api_token(page: Page, username: str, password: str) -> str:
    """An access token for the user's set-up calls through `page.request` (the UI has its own tests)."""
    answer = page.request.post(
        "/api/auth/login", data={"username_or_email": username, "password": password, "remember_me": False}
    )
    assert answer.ok, answer.text()
    return str(answer.json()["access_token"])


def api_headers(page: Page, username: str, password: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(page, username, password)}"}


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


def wait_until(check: Callable[[], bool], what: str, timeout_ms: float) -> None:
    """Poll `check` (a page's state that no single locator assertion expresses) until it holds."""
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def choose(page: Page, select: Locator, option_text: str) -> None:
    """Pick an option of an Element Plus select (its dropdown is teleported to the body)."""
    select.click()
    page.locator(".el-select-dropdown__item:visible", has_text=option_text).first.click()
