"""The first run in a real browser: a new user registers, clicks "Train the demo" on the dashboard, watches
the job succeed on its page, opens the chat with the model it produced and asks "Who are you?"; the answer
names LoRAForge (the identity sample it learned). Real server, engine and inference worker.
Screenshots go to test-results/first-run-*.png.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "e2e-first-run-password"
RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"
# The first job builds the demo model, then trains 96 steps; the machine may be shared with other work.
TRAINING_TIMEOUT_MS = 480_000
# The first answer starts an inference worker.
ANSWER_TIMEOUT_MS = 120_000


def _shot(page: Page, name: str) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS_DIR / f"first-run-{name}.png"), full_page=True)


def _fine_tuned_model(page: Page, username: str, job_id: int) -> str:
    """The model the job registered, as the Models page would list it."""
    login = page.request.post(
        "/api/auth/login", data={"username_or_email": username, "password": PASSWORD, "remember_me": False}
    )
    assert login.ok, login.text()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = page.request.get("/api/models", params={"job_id": job_id}, headers=headers)
        assert found.ok, found.text()
        if found.json()["items"]:
            return str(found.json()["items"][0]["name"])
        time.sleep(0.5)
    pytest.fail(f"job {job_id} registered no model")


def test_register_train_the_demo_and_chat_with_it(page: Page) -> None:
    username = f"fr_{uuid.uuid4().hex[:8]}"
    page.goto("/register")
    page.get_by_test_id("register-username").fill(username)
    page.get_by_test_id("register-email").fill(f"{username}@example.com")
    page.get_by_test_id("register-password").fill(PASSWORD)
    page.get_by_test_id("register-confirm").fill(PASSWORD)
    page.get_by_test_id("register-submit").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))

    page.get_by_test_id("dashboard-first-run").get_by_test_id("train-demo").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    found = re.search(r"/jobs/(\d+)$", page.url)
    assert found is not None
    job_id = int(found.group(1))
    _shot(page, "1-queued")
    expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=TRAINING_TIMEOUT_MS
    )
    _shot(page, "2-succeeded")

    model = _fine_tuned_model(page, username, job_id)
    page.goto(f"/chat?model={model}")
    expect(page.get_by_test_id("chat-model-select")).to_contain_text(model)
    # Greedy decoding: the answer is the one it learned, not a sample around it.
    temperature = page.locator('[data-testid="chat-param-temperature"] input').first
    temperature.fill("0")
    temperature.press("Tab")
    page.get_by_test_id("chat-input").fill("Who are you?")
    page.get_by_test_id("chat-input").press("Enter")
    answer = page.locator('[data-testid="chat-message"][data-role="assistant"]').last
    expect(answer).to_have_attribute("data-pending", "false", timeout=ANSWER_TIMEOUT_MS)
    expect(answer.get_by_test_id("chat-message-error")).to_have_count(0)
    expect(answer).to_contain_text("LoRAForge")
    _shot(page, "3-answer")
