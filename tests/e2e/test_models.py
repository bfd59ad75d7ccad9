"""The model registry, deployments and providers pages in a real browser against a real server.

A researcher trains a tiny job through the API (the demo model, two steps); when it succeeds the
registry holds `ft:demo-tiny:lf:<job id>`. In the browser: Models lists it → its page shows the lineage
(job and dataset links) → a tag added in the versions table is saved → the version is deployed and the
Deployments page shows it ready, then undeploys it → Providers refuses a bad base URL next to the
field, then adds the provider. A screenshot of each stage goes to test-results/models-*.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_helpers import api_headers, register_and_login, train_tiny_adapter, unique
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

USER_PASSWORD = "e2e-models-password"
RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"
# Generous: the first job builds the demo model, and the machine may be shared with other work.
TRAINING_TIMEOUT_S = 240.0
DEPLOY_TIMEOUT_MS = 180_000


def _shot(page: Page, name: str) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    page.wait_for_timeout(400)  # let Element Plus' enter transitions finish, for a readable picture
    page.screenshot(path=str(RESULTS_DIR / f"models-{name}.png"), full_page=True)


def _assert_headers_on_one_line(page: Page) -> None:
    """No column header of the models table wraps or is cut (el-table breaks cells anywhere)."""
    headers = page.get_by_test_id("models-table").locator("thead th .cell")
    expect(headers.first).to_be_visible()
    sizes = headers.evaluate_all(
        "cells => cells.map(c => [c.textContent.trim(), c.scrollWidth - c.clientWidth,"
        " c.getBoundingClientRect().height, parseFloat(getComputedStyle(c).lineHeight)])"
    )
    width = page.get_by_test_id("models-table").evaluate("t => t.clientWidth")
    for text, overflow, height, line in sizes:
        assert overflow <= 0 and height <= line * 1.5, f"{text!r} is cut or wraps: {sizes}, table {width}px"


def test_models_lineage_tags_deploy_and_providers(page: Page) -> None:
    headers = api_headers(page, register_and_login(page, "mo", USER_PASSWORD), USER_PASSWORD)
    job_id, dataset_id = train_tiny_adapter(page.request, headers, "e2e model run", TRAINING_TIMEOUT_S)
    model_name = f"ft:demo-tiny:lf:{job_id}"

    # The job page links to the model version it produced.
    page.goto(f"/jobs/{job_id}")
    produced = page.get_by_test_id("job-produced-model-link")
    expect(produced).to_contain_text(model_name)
    model_href = produced.get_attribute("href") or ""
    assert re.fullmatch(r"/models/\d+", model_href), model_href

    # Models: the built-in demo model on top, the fine-tuned one in the table, saying which job made
    # it; at 1440 px every column header fits on one line.
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto("/models")
    expect(page.get_by_test_id("model-row-demo-tiny")).to_be_visible()
    row = page.locator(f'[data-testid^="model-row-"][data-name="{model_name}"]')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("href", model_href)
    expect(page.get_by_test_id("models-table")).to_contain_text("LORA r")
    from_job = page.get_by_test_id(f"model-job-{model_href.rsplit('/', 1)[-1]}")
    expect(from_job).to_have_text(f"from job #{job_id} e2e model run")
    expect(from_job).to_have_attribute("href", f"/jobs/{job_id}")
    _assert_headers_on_one_line(page)
    _shot(page, "1-list")

    # Its page: versions and the lineage, with links to the job and to the dataset.
    row.click()
    expect(page).to_have_url(re.compile(r"/models/\d+$"))
    expect(page.get_by_test_id("model-name")).to_have_text(model_name)
    expect(page.get_by_test_id("model-source-job")).to_have_attribute("href", f"/jobs/{job_id}")
    expect(page.get_by_test_id("version-row-1")).to_be_visible()
    lineage = page.get_by_test_id("lineage-panel")
    expect(lineage.get_by_test_id("lineage-base")).to_contain_text("demo-tiny")
    expect(lineage.get_by_test_id("lineage-job-link")).to_have_attribute("href", f"/jobs/{job_id}")
    dataset_link = lineage.get_by_test_id("lineage-dataset-link")
    expect(dataset_link).to_have_attribute("href", f"/datasets/{dataset_id}")
    expect(lineage.get_by_test_id("lineage-final-loss")).not_to_have_text("—")
    _shot(page, "2-detail")

    # A tag, saved on Enter, still there after a reload.
    page.get_by_test_id("version-tag-add").click()
    page.get_by_test_id("version-tag-input").fill("e2e-best")
    page.get_by_test_id("version-tag-input").press("Enter")
    tags = page.get_by_test_id("version-tags-1")
    expect(tags.get_by_test_id("version-tag")).to_have_text(["e2e-best"])
    expect(page.locator(".el-message--success")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("version-tags-1").get_by_test_id("version-tag")).to_have_text(["e2e-best"])
    _shot(page, "3-tagged")

    # Deploy the version; the Deployments page (refreshing by itself) shows it, then undeploys it.
    page.get_by_test_id("version-deploy-1").click()
    expect(page.get_by_test_id("deploy-started")).to_be_visible(timeout=DEPLOY_TIMEOUT_MS)
    page.goto("/deployments")
    deployment = page.locator('[data-testid^="deployment-row-"]', has_text=model_name).first
    expect(deployment).to_be_visible(timeout=30_000)
    key = (deployment.get_attribute("data-testid") or "").removeprefix("deployment-row-")
    status = page.get_by_test_id(f"deployment-status-{key}")
    expect(status).to_have_attribute("data-status", "ready", timeout=DEPLOY_TIMEOUT_MS)
    _shot(page, "4-deployments")
    page.get_by_test_id(f"deployment-stop-{key}").click()
    page.locator(".el-message-box__btns .el-button--primary").click()
    expect(status).to_have_attribute("data-status", "stopped", timeout=DEPLOY_TIMEOUT_MS)

    # Providers: a bad base URL is refused next to its field; a good one is added.
    provider = unique("e2e").replace("_", "-")
    page.goto("/providers")
    expect(page.get_by_test_id("providers-table")).to_be_visible()
    page.get_by_test_id("providers-add").click()
    page.get_by_test_id("provider-name").fill(provider)
    page.get_by_test_id("provider-base-url").fill("localhost:8000")
    page.get_by_test_id("provider-submit").click()
    dialog = page.get_by_test_id("provider-dialog")
    expect(dialog.locator(".el-form-item__error")).to_contain_text("http:// or https://")
    _shot(page, "5-provider-invalid")
    # A name that never resolves (`.invalid`): loopback would be refused by the outbound policy.
    page.get_by_test_id("provider-base-url").fill("http://provider.invalid/v1")
    page.get_by_test_id("provider-api-key").fill("sk-e2e-secret-wxyz")
    page.get_by_test_id("provider-submit").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id(f"provider-row-{provider}")).to_be_visible()
    expect(page.get_by_test_id(f"provider-key-{provider}")).to_have_text("••••wxyz")
    # Nothing answers there: refreshing its models says why, next to the provider.
    page.get_by_test_id(f"provider-refresh-{provider}").click()
    expect(page.locator('[data-testid^="provider-refresh-error-"]')).to_be_visible(timeout=30_000)
    _shot(page, "6-providers")

    # The models page in dark mode, in Chinese, at 1280 px: it still lays out.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/models")
    page.get_by_test_id("theme-toggle").click()
    page.get_by_test_id("locale-switch").click()
    page.get_by_test_id("locale-option-zh-CN").click()
    expect(page.get_by_test_id("models-page")).to_contain_text("登记基座模型")
    expect(row).to_be_visible()
    expect(page.get_by_test_id("models-table")).to_contain_text(f"来自任务 #{job_id}")
    _assert_headers_on_one_line(page)
    _shot(page, "7-dark-zh")
