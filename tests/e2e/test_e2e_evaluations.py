"""Evaluations in a real browser against a real server, end to end.

A new user signs up and uploads a three-row test set (through the API: uploading has its own tests).
The sidebar's Evaluations page says what an evaluation is; its "New evaluation" button opens the form,
where the user picks demo-tiny and the dataset, adds a metric and keeps answers short. The evaluation
page follows the run live until it succeeds, then shows the scores, the charts and the
sample browser with every answer; the HTML report downloads as one self-contained page naming the
model and its score. The same evaluation again is served from the cache, and the two runs open side
by side on the compare page. Then in Chinese on a 390 px phone: every evaluation page translated and
no wider than the screen. No page logs a console error. Screenshots go to test-results/evaluations-*.png.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browser_helpers import (
    PHONE,
    RAW_KEY,
    api_headers,
    choose,
    fits,
    login,
    new_context,
    shot,
    sign_up,
    unique,
    watch_console,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "e2e-evaluations-password"
# The first evaluation may build the demo model; the machine may be shared with other work.
EVAL_TIMEOUT_MS = 300_000
ROWS = [
    {"instruction": "Add one and one.", "input": "", "output": "Two."},
    {"instruction": "Name a colour.", "input": "", "output": "Blue."},
    {"instruction": "What is the capital of France?", "input": "", "output": "Paris."},
]
MAX_NEW_TOKENS = 8


def _upload_test_set(page: Page, headers: dict[str, str], name: str) -> int:
    body = "".join(json.dumps(row) + "\n" for row in ROWS)
    created = page.request.post(
        "/api/datasets",
        headers=headers,
        multipart={
            "file": {"name": "qa.jsonl", "mimeType": "application/json", "buffer": body.encode()},
            "name": name,
        },
    )
    assert created.status == 201, created.text()
    return int(created.json()["dataset"]["id"])


def test_evaluation_from_the_form_to_the_report(browser: Browser, server: str, tmp_path: Path) -> None:
    context = new_context(browser, server)
    page = context.new_page()
    errors = watch_console(page)
    username = unique("evan")
    dataset = unique("eval-qa")
    try:
        sign_up(page, username, PASSWORD)
        headers = api_headers(page, username, PASSWORD)
        dataset_id = _upload_test_set(page, headers, dataset)

        # The empty list explains what an evaluation is and leads to the form.
        page.get_by_test_id("nav-evaluations").click()
        expect(page).to_have_url(re.compile(r"/evaluations$"))
        empty = page.get_by_test_id("evaluations-empty")
        expect(empty).to_contain_text("test set")
        empty.get_by_role("button", name="New evaluation").click()
        expect(page).to_have_url(re.compile(r"/evaluations/new$"))

        # The form: a model, the dataset, one more metric, short answers.
        choose(page, page.get_by_test_id("eval-models").locator(".el-select"), "demo-tiny")
        page.keyboard.press("Escape")
        choose(page, page.get_by_test_id("eval-dataset"), dataset)
        page.get_by_test_id("eval-metric-exact_match").click()
        # An option appears only with the metric that reads it.
        expect(page.get_by_test_id("eval-regex")).to_have_count(0)
        expect(page.get_by_test_id("eval-case-sensitive")).to_be_visible()
        page.get_by_test_id("eval-max-new-tokens").locator("input").fill(str(MAX_NEW_TOKENS))
        expect(page.get_by_test_id("eval-name")).to_have_value(f"demo-tiny · {dataset}")
        shot(page, "evaluations-1-form")
        # The page follows the run over the jobs WebSocket (the job page's stream), not by polling.
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.get_by_test_id("eval-submit").click()
        expect(page).to_have_url(re.compile(r"/evaluations/\d+$"))
        evaluation_id = int(page.url.rsplit("/", 1)[-1])

        # Live until it succeeds; then the scores, the charts and the samples.
        status = page.get_by_test_id("evaluation-status")
        expect(status).to_have_attribute("data-status", "succeeded", timeout=EVAL_TIMEOUT_MS)
        expect(page.get_by_test_id("eval-run")).to_have_attribute("data-status", "succeeded")
        assert any(re.search(r"/ws/jobs/\d+\?after=", url) for url in sockets), sockets
        results = page.get_by_test_id("eval-results")
        # One model alone wins nothing: its scores show, none marked best.
        expect(results.get_by_test_id("eval-score-rouge-l")).to_have_text(re.compile(r"^\s*\d+(\.\d+)?\s*$"))
        expect(results.get_by_test_id("eval-score-rouge-l")).to_have_attribute("data-best", "false")
        expect(results.get_by_test_id("eval-score-exact_match")).to_be_visible()
        expect(page.get_by_test_id("eval-chart-bar").locator("canvas")).to_be_visible()
        expect(page.get_by_test_id("eval-chart-radar").locator("canvas")).to_be_visible()
        samples = page.get_by_test_id("eval-samples")
        expect(samples.get_by_test_id("eval-sample")).to_have_count(len(ROWS))
        expect(samples.get_by_test_id("eval-sample").first).to_contain_text("Add one and one.")
        expect(samples.get_by_test_id("eval-answer").first).to_contain_text("demo-tiny")
        # Search narrows the samples down.
        samples.get_by_test_id("eval-samples-search").fill("colour")
        samples.get_by_test_id("eval-samples-apply").click()
        expect(samples.get_by_test_id("eval-sample")).to_have_count(1)
        expect(samples.get_by_test_id("eval-sample")).to_contain_text("Name a colour.")
        shot(page, "evaluations-2-results")

        # The HTML report: one self-contained page naming the model and its score.
        detail = page.request.get(f"/api/evaluations/{evaluation_id}", headers=headers).json()
        rouge_l = float(detail["runs"][0]["results"]["metrics"]["rouge-l"])
        with page.expect_download() as download_info:
            page.get_by_test_id("eval-report-html").click()
        report_path = tmp_path / "report.html"
        download_info.value.save_as(report_path)
        html = report_path.read_text(encoding="utf-8")
        assert html.lstrip().lower().startswith("<!doctype html"), html[:200]
        assert "demo-tiny" in html
        assert f"{rouge_l:.4g}" in html, f"the report lacks the ROUGE-L score {rouge_l:.4g}"
        assert "<script" not in html.lower()
        assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", html, re.IGNORECASE), (
            "the report links out"
        )

        # The same evaluation again is served from the cache; both runs side by side.
        again = page.request.post(
            "/api/evaluations",
            headers=headers,
            data={
                "name": "again",
                "models": ["demo-tiny"],
                "dataset": dataset_id,
                "metrics": ["bleu", "rouge", "exact_match"],
                "generation": {"max_new_tokens": MAX_NEW_TOKENS},
                "start": True,
            },
        )
        assert again.status == 201, again.text()
        assert again.json()["runs"][0]["cached"] is True, again.text()
        page.get_by_test_id("nav-evaluations").click()
        table = page.get_by_test_id("evaluations-table")
        expect(table.locator(".el-table__row")).to_have_count(2)
        table.locator(".el-table__row .el-checkbox").nth(0).click()
        table.locator(".el-table__row .el-checkbox").nth(1).click()
        page.get_by_test_id("evaluations-compare-selected").click()
        expect(page).to_have_url(re.compile(r"/evaluations/compare\?runs=\d+(,|%2C)\d+$"))
        compare = page.get_by_test_id("evaluations-compare")
        expect(compare.get_by_test_id("compare-run")).to_have_count(2)
        expect(compare.get_by_test_id("eval-scores").locator(".el-table__row")).to_have_count(2)
        expect(compare.get_by_test_id("eval-delta").first).to_have_text("±0")
        expect(compare.get_by_test_id("eval-report-html")).to_be_visible()
        shot(page, "evaluations-3-compare")

        compare_url = page.url

        # In Chinese on a phone: every evaluation page translated and within the screen.
        phone = new_context(browser, server, "zh-CN", PHONE)
        try:
            small = phone.new_page()
            errors += watch_console(small)
            login(small, username, PASSWORD)
            for path, ready in (
                ("/evaluations", "evaluations-table"),
                ("/evaluations/new", "eval-form"),
                (f"/evaluations/{evaluation_id}", "eval-sample"),
                (compare_url, "eval-scores"),
            ):
                small.goto(path)
                expect(small.get_by_test_id(ready).first).to_be_visible()
                text = small.locator("#app").inner_text()
                assert not RAW_KEY.search(text), f"{path} shows a message key: {RAW_KEY.search(text)}"
                fits(small, PHONE["width"])
            small.goto(f"/evaluations/{evaluation_id}")
            expect(small.get_by_test_id("evaluation-status")).to_have_text("已成功")
            shot(small, "evaluations-4-phone-zh")
        finally:
            phone.close()
        assert errors == [], errors
    finally:
        context.close()
