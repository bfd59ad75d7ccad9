"""The whole journey of a new team, in a real browser, on a server of its own with an empty data directory.

In English at 1440 px: a researcher registers (and is signed in), uploads a dataset, preprocesses it
(the dry run's numbers are the real run's), opens the job form from "Use for training" (dataset and
version chosen), trains the demo with one click and watches the step move, finds the model the job
produced (and the job on the model's page), asks it "Who are you?" (it names LoRAForge: it learned), opens
the playground; stops a second job (Stopped, resumable, a checkpoint saved today); the admin's user
table refuses to let the admin disable or delete themselves. Then in Chinese at 390 px over the same
data: every page is translated, its navigation a drawer, nothing wider than the phone.
Every page logs no console error and no uncaught exception. Screenshots go to test-results/journey-*.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

import pytest
from browser_helpers import (
    LAPTOP,
    PHONE,
    RAW_KEY,
    choose,
    fits,
    login,
    new_context,
    shot,
    sign_up,
    unique,
    wait_until,
    watch_console,
)
from playwright.sync_api import Browser, BrowserContext, Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "e2e-journey-password"
DATASET_FILE = Path(__file__).resolve().parents[2] / "examples" / "data" / "forge_demo.json"
# The demo job builds the demo model, then trains 96 steps; the machine may be shared with other work.
TRAINING_TIMEOUT_MS = 480_000
# The first answer starts an inference worker.
ANSWER_TIMEOUT_MS = 120_000
_wait_until = partial(wait_until, timeout_ms=TRAINING_TIMEOUT_MS)


def _new_page(browser: Browser, base_url: str) -> tuple[BrowserContext, Page, list[str]]:
    context = new_context(browser, base_url)
    page = context.new_page()
    return context, page, watch_console(page)


def _step(page: Page) -> int:
    """The step the job page's progress card shows (0 while it shows "—")."""
    text = page.get_by_test_id("job-step").locator("b").first.inner_text()
    return int(text) if text.isdigit() else 0


def _no_raw_keys(page: Page) -> None:
    text = page.locator("#app").inner_text()
    assert not RAW_KEY.search(text), f"{page.url} shows a message key: {RAW_KEY.search(text)}"


def _train_the_demo_and_watch(page: Page) -> int:
    """One click on the dashboard; the job page's step moves while it runs; it succeeds. Its id."""
    page.goto("/dashboard")
    page.get_by_test_id("dashboard-first-run").get_by_test_id("train-demo").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    job_id = int(page.url.rsplit("/", 1)[-1])
    status = page.get_by_test_id("job-status")
    expect(status).to_have_attribute("data-status", "running", timeout=TRAINING_TIMEOUT_MS)
    expect(page.get_by_test_id("job-connection")).to_have_attribute("data-state", "live")
    # The step moves on the page before the job ends (progress events between logging steps).
    _wait_until(lambda: _step(page) > 0, "a first step")
    first = _step(page)
    _wait_until(lambda: _step(page) > first, "the step to move")
    assert status.get_attribute("data-status") == "running", "the step only moved at the end"
    shot(page, "journey-1-running")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=TRAINING_TIMEOUT_MS)
    return job_id


def _stop_a_second_job(page: Page, dataset: str) -> int:
    """A CPU preset on the uploaded dataset, stopped gracefully: Stopped (not Cancelled), resumable from
    the checkpoint the stop saved, dated this year."""
    page.goto("/jobs?tab=templates")
    page.get_by_test_id("preset-apply-demo-tiny-lora").click()
    expect(page.get_by_test_id("job-prefill-notice")).to_be_visible()
    expect(page.get_by_test_id("job-name")).not_to_have_value("")
    page.get_by_test_id("job-name").fill("journey stop")
    choose(page, page.get_by_test_id("job-dataset"), dataset)
    page.get_by_test_id("job-max-steps").fill("200")
    page.get_by_test_id("job-start").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    job_id = int(page.url.rsplit("/", 1)[-1])
    status = page.get_by_test_id("job-status")
    expect(status).to_have_attribute("data-status", "running", timeout=TRAINING_TIMEOUT_MS)
    _wait_until(lambda: _step(page) >= 2, "the second job's first steps")
    page.get_by_test_id("job-stop").click()
    expect(status).to_have_attribute("data-status", "stopped", timeout=TRAINING_TIMEOUT_MS)
    expect(status).to_have_text("Stopped")
    expect(page.get_by_test_id("job-stopped-notice")).to_contain_text(
        re.compile(r"continues from checkpoint-\d+")
    )
    expect(page.get_by_test_id("job-resume")).to_be_visible()
    expect(page.get_by_test_id("job-connection")).to_have_count(0)
    # Its notification says so too (a stop is not a cancel).
    page.get_by_test_id("notification-bell").click()
    newest = page.locator('button.item[data-testid^="notification-"]').first
    expect(newest).to_contain_text("Stopped")
    expect(newest).to_contain_text("journey stop")
    page.get_by_test_id("notification-bell").click()
    page.locator("#tab-checkpoints").click()
    checkpoint = (
        page.get_by_test_id("checkpoints-table").locator(".el-table__body-wrapper .el-table__row").first
    )
    expect(checkpoint).to_contain_text(str(datetime.now().year))
    expect(checkpoint).not_to_contain_text("1970")
    shot(page, "journey-4-stopped")
    return job_id


def test_journey_en_1440_then_zh_390(
    browser: Browser, fresh_server: str, admin_credentials: tuple[str, str]
) -> None:
    started = time.monotonic()
    user_context, page, errors = _new_page(browser, fresh_server)
    admin_context, admin, admin_errors = _new_page(browser, fresh_server)
    username = unique("journey")
    admin_name = admin_credentials[0]
    dataset = "journey-demo"
    try:
        # ---- English, 1440 px -------------------------------------------------------------------
        # Registering signs the new user in: the dashboard, with real panels and no promises.
        sign_up(page, username, PASSWORD)
        expect(page.get_by_test_id("dashboard-welcome")).to_contain_text(username)
        expect(page.get_by_test_id("dashboard-host-cpu")).to_contain_text("cores")
        expect(page.get_by_text(re.compile("coming soon", re.IGNORECASE))).to_have_count(0)
        expect(page.get_by_test_id("sidebar")).to_be_visible()
        fits(page, LAPTOP["width"])

        # Upload a dataset: detected, every row counted.
        page.get_by_test_id("nav-datasets").click()
        page.get_by_test_id("dataset-upload").click()
        page.get_by_test_id("upload-drop").locator("input[type=file]").set_input_files(str(DATASET_FILE))
        expect(page.get_by_test_id("upload-chosen")).to_contain_text(DATASET_FILE.name)
        page.get_by_test_id("upload-name").fill(dataset)
        page.get_by_test_id("upload-start").click()
        item = page.get_by_test_id("upload-item").first
        expect(item).to_have_attribute("data-status", "done")
        expect(item.get_by_test_id("upload-result-format")).to_have_text("Alpaca")
        expect(item.get_by_test_id("upload-result-rows")).to_have_text("32 rows")
        item.get_by_test_id("upload-open").click()
        expect(page.get_by_test_id("dataset-name")).to_have_text(dataset)
        dataset_id = int(re.findall(r"/datasets/(\d+)", page.url)[0])

        # Preprocess: the dry run counts the whole file, and the real run removes exactly what it said.
        page.locator("#tab-preprocess").click()
        page.get_by_test_id("pp-max_length").locator("input").fill("100")
        page.get_by_test_id("pp-dry-run").click()
        expect(page.get_by_test_id("pp-estimate")).to_have_attribute("data-extrapolated", "false")
        dry = page.get_by_test_id("pp-dry-rows")
        expect(dry).to_contain_text(re.compile(r"32 rows → \d+ rows"))
        change = re.search(r"32 rows → (\d+) rows", dry.inner_text())
        assert change is not None and 0 < int(change.group(1)) < 32, dry.inner_text()
        expect(page.get_by_test_id("dataset-version")).to_have_text("v1")
        page.get_by_test_id("pp-apply").click()
        expect(page.get_by_test_id("pp-report")).to_contain_text(change.group(0))
        expect(page.get_by_test_id("dataset-version")).to_have_text("v2")
        expect(page.get_by_test_id("dataset-rows")).to_have_text(change.group(1))
        shot(page, "journey-0-preprocessed")

        # "Use for training": the form with this dataset and its new version chosen, human labels.
        page.get_by_test_id("dataset-use-for-training").click()
        expect(page).to_have_url(re.compile(rf"/jobs/new\?dataset={dataset_id}&version=\d+$"))
        expect(page.get_by_test_id("job-dataset")).to_contain_text(dataset)
        expect(page.get_by_test_id("job-dataset-version")).to_contain_text("v2")
        expect(page.get_by_test_id("job-max-steps-label")).to_have_text("Max steps")
        fits(page, LAPTOP["width"])

        # Instead of a long run: the demo, one click on the dashboard.
        demo_id = _train_the_demo_and_watch(page)
        # Finished: nothing live any more, and the job leads to the model it produced.
        expect(page.get_by_test_id("job-connection")).to_have_count(0)
        expect(page.get_by_test_id("job-eta")).to_have_count(0)
        produced = page.get_by_test_id("job-produced-model-link")
        expect(produced).to_contain_text(f":{demo_id}")
        model_name = produced.get_attribute("title") or ""
        assert model_name.startswith("ft:demo-tiny"), model_name
        shot(page, "journey-2-succeeded")
        produced.click()
        expect(page).to_have_url(re.compile(r"/models/\d+$"))
        expect(page.get_by_test_id("model-name")).to_have_text(model_name)
        source = page.get_by_test_id("model-source-job")
        expect(source).to_contain_text(f"from job #{demo_id}")
        expect(source).to_have_attribute("href", f"/jobs/{demo_id}")
        model_path = page.url.removeprefix(fresh_server)

        # Chat with it: greedy decoding gives the identity it learned.
        page.get_by_test_id("model-chat").click()
        expect(page.get_by_test_id("chat-model-select")).to_contain_text(model_name)
        temperature = page.locator('[data-testid="chat-param-temperature"] input').first
        temperature.fill("0")
        temperature.press("Tab")
        page.get_by_test_id("chat-input").fill("Who are you?")
        page.get_by_test_id("chat-input").press("Enter")
        answer = page.locator('[data-testid="chat-message"][data-role="assistant"]').last
        expect(answer).to_have_attribute("data-pending", "false", timeout=ANSWER_TIMEOUT_MS)
        expect(answer.get_by_test_id("chat-message-error")).to_have_count(0)
        expect(answer).to_contain_text("LoRAForge")
        shot(page, "journey-3-answer")
        page.get_by_test_id("nav-playground").click()
        expect(page.get_by_test_id("playground-prompt")).to_be_visible()
        expect(page.get_by_test_id("chat-model-select")).to_be_visible()
        fits(page, LAPTOP["width"])

        stop_id = _stop_a_second_job(page, dataset)

        # The admin (made from the server's settings): the user table, the own row protected, and the
        # job list naming owners.
        login(admin, *admin_credentials)
        expect(admin.get_by_test_id("nav-admin-users")).to_be_visible()
        admin.get_by_test_id("nav-admin-users").click()
        expect(admin.get_by_test_id(f"user-row-{username}")).to_be_visible()
        expect(admin.get_by_test_id(f"user-toggle-{admin_name}")).to_be_disabled()
        expect(admin.get_by_test_id(f"user-delete-{admin_name}")).to_be_disabled()
        expect(admin.get_by_test_id(f"user-toggle-{username}")).to_be_enabled()
        fits(admin, LAPTOP["width"])
        admin.goto("/jobs")
        expect(admin.get_by_test_id(f"job-owner-{stop_id}")).to_have_text(username)
        assert errors == [] and admin_errors == [], errors + admin_errors
        print(f"\njourney: English at 1440 px took {time.monotonic() - started:.0f} s")

        # ---- Chinese, 390 px ----------------------------------------------------------------------
        page.set_viewport_size(PHONE)
        page.goto("/dashboard")
        expect(page.get_by_test_id("sidebar")).to_be_hidden()
        page.get_by_test_id("header-more").click()
        page.get_by_test_id("more-locale-zh-CN").click()
        expect(page.get_by_test_id("dashboard-welcome")).to_contain_text(f"欢迎，{username}")
        expect(page.get_by_test_id("page-title")).to_have_text("仪表盘")
        # The drawer: shut until the menu button opens it, shut again once a page is chosen.
        page.get_by_test_id("nav-menu").click()
        expect(page.get_by_test_id("sidebar")).to_be_visible()
        page.get_by_test_id("nav-datasets").click()
        expect(page.get_by_test_id("sidebar")).to_be_hidden()

        # path -> what shows the page is in Chinese
        pages: dict[str, Callable[[], object]] = {
            "/datasets": lambda: expect(page.get_by_test_id(f"dataset-row-{dataset}")).to_be_visible(),
            f"/datasets/{dataset_id}": lambda: expect(
                page.get_by_test_id("dataset-use-for-training")
            ).to_have_text("用于训练"),
            "/jobs": lambda: (
                expect(page.get_by_test_id(f"job-status-{stop_id}")).to_have_text("已停止"),
                expect(page.get_by_test_id(f"job-status-{demo_id}")).to_have_text("已成功"),
            ),
            f"/jobs/{demo_id}": lambda: (
                expect(page.get_by_test_id("job-status")).to_have_text("已成功"),
                expect(page.get_by_test_id("job-step")).to_contain_text("步数"),
                expect(page.get_by_test_id("job-progress").locator("xpath=..")).to_contain_text(
                    re.compile(r"已用时间 \d+(分\d+)?秒")
                ),
            ),
            f"/jobs/{stop_id}": lambda: (
                expect(page.get_by_test_id("job-stopped-notice")).to_contain_text("checkpoint-"),
                page.locator("#tab-checkpoints").click(),
                expect(page.get_by_test_id("checkpoints-table")).to_contain_text("保存时间"),
                expect(page.get_by_test_id("checkpoints-table")).to_contain_text(str(datetime.now().year)),
            ),
            f"/jobs/new?dataset={dataset_id}": lambda: (
                expect(page.get_by_test_id("job-max-steps-label")).to_have_text("最大步数"),
                expect(page.get_by_test_id("job-lr-label")).to_have_text("学习率"),
            ),
            "/models": lambda: expect(page.get_by_test_id("models-page")).to_contain_text(
                f"来自任务 #{demo_id}"
            ),
            model_path: lambda: expect(page.get_by_test_id("model-source-job")).to_contain_text(
                f"来自任务 #{demo_id}"
            ),
            f"/chat?model={model_name}": lambda: expect(page.get_by_test_id("chat-send")).to_contain_text(
                "发送"
            ),
        }
        for path, chinese in pages.items():
            page.goto(path)
            chinese()
            expect(page.get_by_test_id("sidebar")).to_be_hidden()
            expect(page.get_by_test_id("nav-menu")).to_be_visible()
            expect(page.get_by_test_id("header-more")).to_be_in_viewport()
            fits(page, PHONE["width"])
            _no_raw_keys(page)
        shot(page, "journey-5-zh-phone-chat")

        admin.set_viewport_size(PHONE)
        admin.goto("/admin/users")
        admin.get_by_test_id("header-more").click()
        admin.get_by_test_id("more-locale-zh-CN").click()
        expect(admin.get_by_test_id("page-title")).to_have_text("用户管理")
        expect(admin.get_by_test_id("user-table")).to_contain_text("用户名")
        expect(admin.get_by_test_id(f"user-delete-{admin_name}")).to_be_disabled()
        expect(admin.get_by_test_id("sidebar")).to_be_hidden()
        fits(admin, PHONE["width"])
        _no_raw_keys(admin)
        shot(admin, "journey-6-zh-phone-users")
        assert errors == [] and admin_errors == [], errors + admin_errors
        print(f"journey: {time.monotonic() - started:.0f} s in all")
    except BaseException:
        for failed_page, name in ((page, "user"), (admin, "admin")):
            try:
                shot(failed_page, f"journey-failed-{name}")
            except Exception as exc:  # a screenshot must never hide the real failure
                print(f"could not save a screenshot: {exc}")
        raise
    finally:
        user_context.close()
        admin_context.close()
