"""What the browser tests share: new accounts, logging in, API headers for set-up calls, a tiny fine-tuned
job to start from, the console watch, screenshots and the page-width check. (A module rather than
conftest.py: test files import it by name, as tests/api does with api_helpers.)
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    APIRequestContext,
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Locator,
    Page,
    ViewportSize,
    expect,
)

RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"
LAPTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
UI_TIMEOUT_MS = 15_000
# A raw message key where a translation should be (`jobs.status.stopped`): vue-i18n shows the key
# when neither language has the message.
RAW_KEY = re.compile(r"\b[a-z][A-Za-z]+\.[a-z][A-Za-z]+\.[a-z][A-Za-z.]*\b")


def new_context(
    browser: Browser, base_url: str, locale: str = "en-US", viewport: ViewportSize = LAPTOP
) -> BrowserContext:
    """A browser context on the server, in a language and a screen size, light, with the UI timeout."""
    context = browser.new_context(base_url=base_url, locale=locale, color_scheme="light", viewport=viewport)
    context.set_default_timeout(UI_TIMEOUT_MS)
    return context


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


def sign_up(page: Page, username: str, password: str) -> None:
    """Register through the register page; it signs the new user in and leads to the dashboard."""
    page.goto("/register")
    page.get_by_test_id("register-username").fill(username)
    page.get_by_test_id("register-email").fill(f"{username}@example.com")
    page.get_by_test_id("register-password").fill(password)
    page.get_by_test_id("register-confirm").fill(password)
    page.get_by_test_id("register-submit").click()
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


def api_token(page: Page, username: str, password: str) -> str:
    """An access token for the user's set-up calls through `page.request` (the UI has its own tests)."""
    answer = page.request.post(
        "/api/auth/login", data={"username_or_email": username, "password": password, "remember_me": False}
    )
    assert answer.ok, answer.text()
    return str(answer.json()["access_token"])


def api_headers(page: Page, username: str, password: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(page, username, password)}"}


def train_tiny_adapter(
    request: APIRequestContext, headers: dict[str, str], name: str, timeout_s: float
) -> tuple[int, int]:
    """The sample dataset and a two-step LoRA job on the demo model, run to success through the API
    (training has its own tests); (job id, dataset id). The job registers `ft:demo-tiny:lf:<job id>`."""
    created = request.post("/api/datasets/samples/forge-demo", headers=headers)
    assert created.status == 201, created.text()
    dataset_id = int(created.json()["dataset"]["id"])
    spec: dict[str, Any] = {
        "model_name_or_path": "demo-tiny",
        "stage": "sft",
        "finetuning_type": "lora",
        "dataset": dataset_id,
        "max_steps": 2,
        "logging_steps": 1,
        "cutoff_len": 128,
        "per_device_train_batch_size": 2,
        "save_strategy": "no",
    }
    job = request.post("/api/jobs", data={"name": name, "spec": spec, "start": True}, headers=headers)
    assert job.status == 201, job.text()
    job_id = int(job.json()["id"])
    deadline = time.monotonic() + timeout_s
    status = "queued"
    while time.monotonic() < deadline:
        answer = request.get(f"/api/jobs/{job_id}", headers=headers)
        assert answer.ok, answer.text()
        status = str(answer.json()["status"])
        if status in {"succeeded", "failed", "cancelled"}:
            break
        time.sleep(0.5)
    assert status == "succeeded", f"the tiny job ended {status}"
    return job_id, dataset_id


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


def fits(page: Page, width: int) -> None:
    """Nothing makes the page wider than the window."""
    scroll_width = int(page.evaluate("document.documentElement.scrollWidth"))
    assert scroll_width <= width + 1, f"{page.url} is {scroll_width} px wide on a {width} px screen"


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
