"""Datasets in a real browser against a real server.

Upload a small JSONL with one invalid row (multipart), look inside it (preview, statistics,
validation), preprocess it (dry run, then apply → v2), roll back to v1 (→ v3), and push a second
file through the resumable chunked upload by lowering the chunking threshold in localStorage.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from browser_helpers import register_and_login
from playwright.sync_api import Page, Request, Route, expect

pytestmark = pytest.mark.e2e

USER_PASSWORD = "e2e-datasets-password"
UPLOADS_PATH = "/api/datasets/uploads"


def _chat(question: str, answer: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def _write_small_jsonl(path: Path) -> None:
    rows = [
        _chat("What is LoRA?", "Low-rank adaptation of large language models."),
        _chat("Name a colour.", "Blue."),
        _chat("What is LoRA?", "Low-rank adaptation of large language models."),  # duplicate of row 1
        _chat("Two plus two?", "Four."),
        {"messages": [{"role": "bot", "content": "not a valid role"}]},  # the invalid row
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _write_larger_jsonl(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(json.dumps(_chat(f"Question number {i}: what is {i} squared?", f"It is {i * i}.")) + "\n")


def _upload(page: Page, file: Path, name: str) -> None:
    page.get_by_test_id("dataset-upload").click()
    expect(page.get_by_test_id("upload-dialog")).to_be_visible()
    page.get_by_test_id("upload-drop").locator("input[type=file]").set_input_files(str(file))
    expect(page.get_by_test_id("upload-chosen")).to_contain_text(file.name)
    page.get_by_test_id("upload-name").fill(name)
    page.get_by_test_id("upload-start").click()


def _open_tab(page: Page, name: str) -> None:
    page.locator(f"#tab-{name}").click()


def test_dataset_journey(page: Page, tmp_path: Path) -> None:
    register_and_login(page, "dana", USER_PASSWORD)

    # The sidebar leads to an empty list that offers the sample dataset.
    page.get_by_test_id("nav-datasets").click()
    expect(page).to_have_url(re.compile(r"/datasets$"))
    expect(page.get_by_test_id("datasets-empty")).to_be_visible()
    expect(page.get_by_test_id("dataset-import-sample")).to_be_visible()

    # A small file goes in one multipart request; the format is detected and the bad row counted.
    small = tmp_path / "chats.jsonl"
    _write_small_jsonl(small)
    _upload(page, small, "e2e-chats")
    item = page.get_by_test_id("upload-item").first
    expect(item).to_have_attribute("data-status", "done")
    expect(item.get_by_test_id("upload-result-format")).to_have_text("OpenAI messages")
    expect(item.get_by_test_id("upload-result-invalid")).to_have_text("1 invalid")
    expect(page.get_by_test_id("dataset-row-e2e-chats")).to_be_visible()
    expect(page.get_by_test_id("dataset-invalid-e2e-chats")).to_contain_text("1")

    # The dataset page: preview renders conversations as chat turns.
    item.get_by_test_id("upload-open").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+"))
    expect(page.get_by_test_id("dataset-name")).to_have_text("e2e-chats")
    expect(page.get_by_test_id("dataset-format")).to_have_text("OpenAI messages")
    expect(page.get_by_test_id("dataset-invalid")).to_have_text("1")
    turns = page.get_by_test_id("dataset-preview").get_by_test_id("chat-turn")
    expect(turns.filter(has_text="Low-rank adaptation").first).to_be_visible()

    # Statistics: ECharts draws on a canvas.
    _open_tab(page, "stats")
    expect(page.get_by_test_id("chart-tokens").locator("canvas")).to_be_visible()
    expect(page.get_by_test_id("chart-roles").locator("canvas")).to_be_visible()

    # Validation: the invalid row, with its row number and field.
    _open_tab(page, "errors")
    expect(page.get_by_test_id("errors-invalid")).to_have_text("1 invalid")
    expect(page.get_by_test_id("errors-table")).to_contain_text("role")

    # Preprocess: a dry run shows before/after and changes nothing; apply makes v2.
    _open_tab(page, "preprocess")
    page.get_by_test_id("pp-dedupe").click()
    page.get_by_test_id("pp-dry-run").click()
    expect(page.get_by_test_id("pp-dry-result")).to_be_visible()
    expect(page.get_by_test_id("pp-before").first).to_be_visible()
    # The dry run counts every row, as the real run will: the duplicate goes, 4 valid rows → 3.
    expect(page.get_by_test_id("pp-dry-rows")).to_contain_text("4 rows → 3 rows")
    expect(page.get_by_test_id("pp-estimate")).to_have_attribute("data-extrapolated", "false")
    expect(page.get_by_test_id("dataset-version")).to_have_text("v1")
    page.get_by_test_id("pp-apply").click()
    expect(page.get_by_test_id("pp-report")).to_contain_text("4 rows → 3 rows")
    expect(page.get_by_test_id("dataset-version")).to_have_text("v2")

    # Versions: v2 is current; rolling back to v1 adds v3.
    _open_tab(page, "versions")
    expect(page.get_by_test_id("version-2")).to_be_visible()
    expect(page.get_by_test_id("version-2").get_by_test_id("version-current")).to_be_visible()
    page.get_by_test_id("version-rollback-1").click()
    page.locator(".el-message-box").get_by_role("button", name="Roll back").click()
    expect(page.get_by_test_id("version-3")).to_be_visible()
    expect(page.get_by_test_id("version-3").get_by_test_id("version-current")).to_be_visible()
    expect(page.get_by_test_id("dataset-version")).to_have_text("v3")

    # Compare v1 and v2: dedupe removed the duplicate.
    page.get_by_test_id("version-select-1").click()
    page.get_by_test_id("version-select-2").click()
    page.get_by_test_id("versions-compare").click()
    expect(page.get_by_test_id("compare-removed")).to_contain_text("1")
    page.keyboard.press("Escape")

    # "Use for training" opens the job form with this dataset and its current version.
    dataset_id = re.search(r"/datasets/(\d+)", page.url).group(1)
    page.get_by_test_id("dataset-use-for-training").click()
    expect(page).to_have_url(re.compile(rf"/jobs/new\?dataset={dataset_id}&version=\d+$"))


def test_chunked_upload_resumes(page: Page, tmp_path: Path) -> None:
    register_and_login(page, "dana", USER_PASSWORD)
    # Anything over 64 KiB takes the resumable path, in 64 KiB chunks.
    page.evaluate(
        "() => { localStorage.setItem('loraforge.upload.chunkThreshold', '65536');"
        " localStorage.setItem('loraforge.upload.chunkSize', '65536') }"
    )
    sent: list[int] = []

    def record(request: Request) -> None:
        if request.method == "PUT" and UPLOADS_PATH in request.url:
            sent.append(int(parse_qs(urlparse(request.url).query)["offset"][0]))

    page.on("request", record)
    # The connection "drops" for the third chunk: every try of it fails until we let it through.
    broken_offset = 2 * 65536
    network = {"down": True}

    def flaky(route: Route) -> None:
        offset = int(parse_qs(urlparse(route.request.url).query)["offset"][0])
        if network["down"] and offset == broken_offset:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(re.compile(r".*/api/datasets/uploads/[^/]+/chunks\?.*"), flaky)

    big = tmp_path / "squares.jsonl"
    _write_larger_jsonl(big, 4000)
    size = big.stat().st_size
    assert size > 4 * 65536

    page.goto("/datasets")
    _upload(page, big, "e2e-squares")
    item = page.get_by_test_id("upload-item").first
    expect(item).to_contain_text("resumable")
    # The chunk is retried a few times, then the upload stops with a resumable error.
    expect(item).to_have_attribute("data-status", "error", timeout=30_000)
    expect(item.get_by_test_id("upload-error")).to_contain_text("connection was lost")
    assert sent.count(broken_offset) >= 2, sent  # retried
    assert sent[:2] == [0, 65536], sent

    # The connection is back: resume asks the server what is missing and sends only that.
    network["down"] = False
    before_resume = len(sent)
    item.get_by_test_id("upload-resume").click()
    expect(item).to_have_attribute("data-status", "done", timeout=60_000)
    resent = sent[before_resume:]
    assert resent[0] == broken_offset and 0 not in resent and 65536 not in resent, resent
    assert sorted(set(sent)) == list(range(0, size, 65536)), sent

    expect(item.get_by_test_id("upload-result-format")).to_have_text("OpenAI messages")
    expect(item.get_by_test_id("upload-result-rows")).to_have_text("4,000 rows")
    expect(page.get_by_test_id("dataset-row-e2e-squares")).to_be_visible()
