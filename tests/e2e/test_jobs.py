"""A training job in a real browser against a real server and a real engine (the job page).

Log in, import the sample dataset, fill the new-job form (the tiny demo model, which the server builds
on first use), start it and land on the live job page; watch the loss chart grow over the WebSocket,
stop it (the engine checkpoints and the job ends stopped, naming that checkpoint), resume it from that
checkpoint (running again, the chart's step goes on past where it stopped), then cancel it. A screenshot
of each stage goes to test-results/.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import pytest
from browser_helpers import api_headers, choose, register_and_login, wait_until
from playwright.sync_api import Locator, Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

USER_PASSWORD = "e2e-jobs-password"
RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"
# Generous: the first job builds the demo model, and the machine may be shared with other work.
TRAINING_TIMEOUT_MS = 180_000
# Many steps, so the run is still going when the test stops it; a checkpoint every few steps, so
# stopping always leaves one to resume from.
MAX_STEPS = "2000"
SAVE_STEPS = "5"
_wait_until = partial(wait_until, timeout_ms=TRAINING_TIMEOUT_MS)


def _shot(page: Page, name: str) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS_DIR / f"jobs-{name}.png"), full_page=True)


def _import_sample(page: Page, username: str) -> str:
    """The sample dataset through the API (the datasets UI has its own e2e test); returns its name."""
    headers = api_headers(page, username, USER_PASSWORD)
    created = page.request.post("/api/datasets/samples/forge-demo", headers=headers)
    assert created.status == 201, created.text()
    return str(created.json()["dataset"]["name"])


def _int_attr(locator: Locator, name: str) -> int:
    value = locator.get_attribute(name)
    return int(value) if value else 0


def _fill_form(page: Page, dataset_name: str) -> None:
    form = page.get_by_test_id("job-form")
    expect(form).to_be_visible()
    # The form fills in defaults once its schema and datasets have loaded: type over them after that.
    name = page.get_by_test_id("job-name")
    expect(name).not_to_have_value("")
    name.fill("e2e live job")
    choose(page, page.get_by_test_id("job-model"), "demo-tiny")
    choose(page, page.get_by_test_id("job-dataset"), dataset_name)
    page.get_by_test_id("job-max-steps").fill(MAX_STEPS)
    page.get_by_test_id("job-lr").fill("0.001")
    advanced = page.get_by_test_id("job-advanced")
    advanced.locator(".el-collapse-item__header").first.click()
    page.get_by_test_id("job-field-logging_steps").fill("1")
    page.get_by_test_id("job-field-save_steps").fill(SAVE_STEPS)


def test_job_live_page_stop_resume_cancel(page: Page) -> None:
    username = register_and_login(page, "jo", USER_PASSWORD)
    dataset_name = _import_sample(page, username)

    # The form: demo model, the sample dataset, many steps with a metric every step.
    page.goto("/jobs/new")
    _fill_form(page, dataset_name)
    _shot(page, "1-form")
    page.get_by_test_id("job-start").click()

    # The job page, live over the WebSocket.
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    job_id = int(page.url.rsplit("/", 1)[-1])
    expect(page.get_by_test_id("job-page")).to_be_visible()
    expect(page.get_by_test_id("job-connection")).to_have_attribute("data-state", "live")
    status = page.get_by_test_id("job-status")
    expect(status).to_have_attribute("data-status", "running", timeout=TRAINING_TIMEOUT_MS)

    # The chart grows while we watch.
    chart = page.get_by_test_id("loss-chart")
    expect(chart.locator("canvas").first).to_be_visible()
    _wait_until(lambda: _int_attr(chart, "data-points") >= 3, "the first loss points")
    seen = _int_attr(chart, "data-points")
    _wait_until(lambda: _int_attr(chart, "data-points") > seen + 2, "the chart to update")
    expect(page.get_by_test_id("job-progress")).to_be_visible()
    expect(page.get_by_test_id("lr-chart").locator("canvas").first).to_be_visible()
    expect(page.get_by_test_id("resource-gauges")).to_be_visible()
    _wait_until(lambda: _int_attr(page.get_by_test_id("log-viewer"), "data-lines") > 0, "log lines")
    _shot(page, "2-running")

    # Stop: graceful, so the engine saves a checkpoint, and the job ends stopped (resumable), saying
    # which checkpoint Resume continues from.
    _wait_until(lambda: _int_attr(chart, "data-last-step") > int(SAVE_STEPS), "a first checkpoint's step")
    page.get_by_test_id("job-stop").click()
    expect(status).to_have_attribute("data-status", "stopped", timeout=TRAINING_TIMEOUT_MS)
    expect(status).to_have_text("Stopped")
    notice = page.get_by_test_id("job-stopped-notice")
    expect(notice).to_contain_text(re.compile(r"continues from checkpoint-\d+"))
    stopped_at = _int_attr(chart, "data-last-step")
    assert stopped_at > 0
    page.locator("#tab-checkpoints").click()
    expect(page.get_by_test_id("checkpoints-table").locator(".el-table__row").first).to_be_visible()
    page.locator("#tab-events").click()
    expect(page.get_by_test_id("events-timeline").get_by_test_id("timeline-item").first).to_be_visible()
    _shot(page, "3-stopped")
    page.get_by_test_id("job-tabs").scroll_into_view_if_needed()
    _shot(page, "3b-stopped-events")

    # Resume from the latest checkpoint: running again, and the steps go on past where it stopped.
    page.get_by_test_id("job-resume").locator("button").first.click()
    expect(status).to_have_attribute("data-status", "running", timeout=TRAINING_TIMEOUT_MS)
    _wait_until(lambda: _int_attr(chart, "data-last-step") > stopped_at + 2, "steps after the resume")
    expect(page.get_by_test_id("job-attempt")).to_be_visible()
    _shot(page, "4-resumed")

    # Cancel to finish (confirmed in a dialog).
    page.get_by_test_id("job-cancel").click()
    page.locator(".el-message-box__btns .el-button--primary").click()
    expect(status).to_have_attribute("data-status", "cancelled", timeout=TRAINING_TIMEOUT_MS)
    expect(page.locator(".el-message-box")).to_be_hidden()
    _shot(page, "5-cancelled")
    page.locator("#tab-spec").click()
    expect(page.get_by_test_id("spec-view")).to_contain_text("model_name_or_path: demo-tiny")
    expect(page.get_by_test_id("spec-view")).to_contain_text(f"max_steps: {MAX_STEPS}")
    page.locator("#tab-logs").click()
    page.get_by_test_id("log-search").fill("checkpoint")
    page.get_by_test_id("job-tabs").scroll_into_view_if_needed()
    _shot(page, "5b-log-search")

    # Comparing the job with itself: one curve, and no spec differences.
    page.goto(f"/jobs/compare?ids={job_id}")
    expect(page.get_by_test_id("compare-job")).to_have_count(1)
    expect(page.get_by_test_id("compare-job")).to_contain_text("e2e live job")
    compare_chart = page.get_by_test_id("compare-chart")
    _wait_until(lambda: _int_attr(compare_chart, "data-points") > 0, "the comparison curve")
    _shot(page, "6-compare")

    # Clone opens the form with a copy of the spec (nothing is saved until the user acts).
    page.goto(f"/jobs/{job_id}")
    page.get_by_test_id("job-clone").click()
    expect(page).to_have_url(re.compile(rf"/jobs/new\?clone={job_id}$"))
    expect(page.get_by_test_id("job-prefill-notice")).to_be_visible()

    # The job page in dark mode on a phone-sized screen, in Chinese: it reflows and still draws.
    page.goto(f"/jobs/{job_id}")
    page.get_by_test_id("theme-toggle").click()
    page.get_by_test_id("locale-switch").click()
    page.get_by_test_id("locale-option-zh-CN").click()
    page.set_viewport_size({"width": 420, "height": 900})
    # At this width the sidebar is a drawer, shut until the header's menu button opens it.
    expect(page.get_by_test_id("sidebar")).to_be_hidden()
    expect(page.get_by_test_id("job-status")).to_have_text("已取消")
    expect(chart.locator("canvas").first).to_be_visible()
    _shot(page, "7-dark-narrow-zh")
