"""The fine-tune → chat journey in a real browser against a real server, engine and inference worker.

A researcher trains a tiny job (through the API: the job form has its own e2e test), finds the
fine-tuned model on the Models page, opens the chat with `?model=<fine-tuned name>`, sends a message
and watches the answer stream in (SSE from the builtin worker on the demo model + the job's adapter);
after a reload the conversation is still there; the Markdown export downloads with the message in it;
then the playground sends one prompt to the demo model and the fine-tuned model side by side.
Screenshots of each stage go to test-results/chat-*.png.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import api_token, register_and_login
from playwright.sync_api import APIRequestContext, Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

USER_PASSWORD = "e2e-chat-password"
RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"
# Generous: the first job builds the demo model, and the machine may be shared with other work.
TRAINING_TIMEOUT_S = 240.0
# The first answer starts an inference worker (loads the demo model and the adapter).
ANSWER_TIMEOUT_MS = 120_000
MESSAGE = "Hello from the e2e journey"
EDITED = "Hello again, edited"


def _shot(page: Page, name: str) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS_DIR / f"chat-{name}.png"), full_page=True)


def _train_tiny_job(request: APIRequestContext, token: str) -> int:
    """The sample dataset and a few LoRA steps on the demo model; returns the succeeded job's id."""
    headers = {"Authorization": f"Bearer {token}"}
    created = request.post("/api/datasets/samples/forge-demo", headers=headers)
    assert created.status == 201, created.text()
    dataset_id = created.json()["dataset"]["id"]
    spec: dict[str, Any] = {
        "model_name_or_path": "demo-tiny",
        "stage": "sft",
        "finetuning_type": "lora",
        "dataset": dataset_id,
        "max_steps": 3,
        "logging_steps": 1,
        "cutoff_len": 128,
        "per_device_train_batch_size": 2,
        "save_strategy": "no",
        "save_every_minutes": None,
    }
    job = request.post(
        "/api/jobs", data={"name": "e2e chat job", "spec": spec, "start": True}, headers=headers
    )
    assert job.status == 201, job.text()
    job_id = int(job.json()["id"])
    deadline = time.monotonic() + TRAINING_TIMEOUT_S
    status = "queued"
    while time.monotonic() < deadline:
        current = request.get(f"/api/jobs/{job_id}", headers=headers)
        assert current.ok, current.text()
        status = current.json()["status"]
        if status in {"succeeded", "failed", "cancelled"}:
            break
        time.sleep(0.5)
    assert status == "succeeded", f"job {job_id} ended {status}"
    return job_id


def _fine_tuned_name(request: APIRequestContext, token: str, job_id: int) -> str:
    """The job's auto-registered model as /v1/models lists it (`ft:demo-tiny:lf:<job id>`)."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 30.0
    ids: list[str] = []
    while time.monotonic() < deadline:
        listed = request.get("/v1/models", headers=headers)
        assert listed.ok, listed.text()
        ids = [str(item["id"]) for item in listed.json()["data"]]
        for model_id in ids:
            if model_id.startswith("ft:") and model_id.endswith(f":{job_id}"):
                return model_id
        time.sleep(0.5)
    pytest.fail(f"no fine-tuned model of job {job_id} in /v1/models: {ids}")


def _set_number(page: Page, test_id: str, value: str) -> None:
    """Type into an Element Plus number input (the test id is on its wrapper or on the input)."""
    field = page.locator(f'[data-testid="{test_id}"] input, input[data-testid="{test_id}"]').first
    field.fill(value)
    field.press("Tab")  # the number input commits its value on change (blur)


def test_finetune_then_chat_and_compare(page: Page) -> None:
    token = api_token(page, register_and_login(page, "ch", USER_PASSWORD), USER_PASSWORD)
    job_id = _train_tiny_job(page.request, token)
    ft_name = _fine_tuned_name(page.request, token, job_id)

    # The Models page lists the fine-tuned model.
    page.goto("/models")
    # (A slow first answer on a busy machine is not a failure: the page waits for its list.)
    expect(page.locator(".el-table__row", has_text=ft_name).first).to_be_visible(timeout=60_000)
    _shot(page, "1-models")

    # The chat, with the fine-tuned model preselected by the link.
    page.goto(f"/chat?model={ft_name}")
    expect(page.get_by_test_id("chat-empty")).to_be_visible()
    expect(page.get_by_test_id("chat-model-select")).to_contain_text(ft_name)
    _set_number(page, "chat-param-max-tokens", "16")
    page.get_by_test_id("chat-input").fill(MESSAGE)
    page.get_by_test_id("chat-input").press("Enter")

    # The conversation exists now (URL /chat/<id>); the answer streams in and is stored.
    expect(page).to_have_url(re.compile(r"/chat/\d+"))
    found = re.search(r"/chat/(\d+)", page.url)
    assert found is not None
    conversation_id = int(found.group(1))
    messages = page.get_by_test_id("chat-message")
    expect(messages.first).to_contain_text(MESSAGE)
    answer = page.locator('[data-testid="chat-message"][data-role="assistant"]').last
    expect(answer).to_have_attribute("data-pending", "false", timeout=ANSWER_TIMEOUT_MS)
    expect(answer.get_by_test_id("chat-message-error")).to_have_count(0)
    expect(answer.get_by_test_id("chat-message-model")).to_have_text(ft_name)
    expect(answer.get_by_test_id("chat-message-stats")).to_contain_text("→")
    expect(page.get_by_test_id("chat-send")).to_be_visible()  # the stop button is gone
    _shot(page, "2-answered")

    # A reload keeps everything: the conversation in the list, both messages on the page.
    page.reload()
    expect(page.get_by_test_id("chat-message")).to_have_count(2)
    expect(page.get_by_test_id("chat-message").first).to_contain_text(MESSAGE)
    item = page.locator(f'[data-testid="chat-conversation"][data-id="{conversation_id}"]')
    expect(item).to_be_visible()
    expect(item).to_contain_text(MESSAGE[:20])  # the first message titled it

    # Export as Markdown: a download named after the id, with the message in it.
    item.get_by_test_id("chat-conversation-menu").click()
    with page.expect_download() as download_info:
        page.locator('.el-dropdown-menu__item[data-testid="chat-export-markdown"]:visible').click()
    download = download_info.value
    assert download.suggested_filename == f"conversation-{conversation_id}.md"
    exported = Path(download.path()).read_text(encoding="utf-8")
    assert MESSAGE in exported
    _shot(page, "3-reloaded")

    # Regenerate the answer: a sibling branch, and the switcher shows it as 2/2.
    page.get_by_test_id("chat-regenerate").click()
    answer = page.locator('[data-testid="chat-message"][data-role="assistant"]').last
    expect(answer.get_by_test_id("chat-branch-position")).to_have_text("2/2", timeout=ANSWER_TIMEOUT_MS)
    expect(answer).to_have_attribute("data-pending", "false")

    # Edit the question and resend: the question itself branches (2/2); going back shows the first.
    user = page.locator('[data-testid="chat-message"][data-role="user"]').first
    user.hover()
    user.get_by_test_id("chat-edit").click()
    page.get_by_test_id("chat-edit-input").fill(EDITED)
    page.get_by_test_id("chat-edit-send").click()
    expect(user.get_by_test_id("chat-branch-position")).to_have_text("2/2", timeout=ANSWER_TIMEOUT_MS)
    expect(user).to_contain_text(EDITED)
    expect(answer).to_have_attribute("data-pending", "false", timeout=ANSWER_TIMEOUT_MS)
    user.get_by_test_id("chat-branch-prev").click()
    expect(user.get_by_test_id("chat-branch-position")).to_have_text("1/2")
    expect(user).to_contain_text(MESSAGE)
    # The first question's branch keeps its two answers.
    expect(answer.get_by_test_id("chat-branch-position")).to_have_text("2/2")
    _shot(page, "3b-branches")

    # The playground: the demo model and the fine-tuned one, side by side.
    page.goto("/playground")
    select = page.get_by_test_id("chat-model-select")
    expect(select).to_contain_text("demo-tiny")
    select.click()
    page.locator(".el-select-dropdown__item:visible", has_text=ft_name).first.click()
    page.keyboard.press("Escape")
    page.get_by_test_id("playground-prompt").fill("Say something short.")
    page.get_by_test_id("playground-options").locator(".el-collapse-item__header").click()
    _set_number(page, "chat-param-max-tokens", "16")
    page.get_by_test_id("playground-run").click()
    columns = page.get_by_test_id("playground-column")
    expect(columns).to_have_count(2)
    expect(columns.nth(0)).to_have_attribute("data-model", "demo-tiny")
    expect(columns.nth(1)).to_have_attribute("data-model", ft_name)
    for index in range(2):
        column = columns.nth(index)
        expect(column).to_have_attribute("data-pending", "false", timeout=ANSWER_TIMEOUT_MS)
        expect(column.get_by_test_id("playground-column-error")).to_have_count(0)
        expect(column.get_by_test_id("playground-column-stats")).to_contain_text("→")
    expect(page.get_by_test_id("playground-run-id")).to_be_visible()
    expect(page.get_by_test_id("playground-history").locator(".el-table__row")).to_have_count(1)
    _shot(page, "4-playground")

    # The conversation in dark mode and Chinese at 1280 px: translated, and the layout holds.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"/chat/{conversation_id}")
    page.get_by_test_id("theme-toggle").click()
    page.get_by_test_id("locale-switch").click()
    page.get_by_test_id("locale-option-zh-CN").click()
    expect(page.get_by_test_id("chat-send")).to_contain_text("发送")
    expect(page.get_by_test_id("chat-panel")).to_be_visible()
    expect(page.get_by_test_id("chat-message")).to_have_count(2)
    _shot(page, "5-dark-zh")
