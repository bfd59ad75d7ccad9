"""Exporting a model version in a real browser against a real server, end to end.

A new user signs up and fine-tunes the demo model for two steps (through the API: training has its
own tests), which registers `ft:demo-tiny:lf:<job>` with a LoRA adapter version. demo-tiny itself is
virtual (no registry row, no page), so the adapter version is what gets exported: a GGUF merges it in
memory first. From the Models page: the model, its version's Export action, GGUF at Q8_0 with the
estimated size and memory; the dialog follows the job until the file has been read back and compared
with the source, then the GGUF downloads through the UI's button (its size as listed, its first bytes
the GGUF magic) and the llama.cpp command names it. The new version shows its format and
quantization in the versions table. Then in Chinese on a 390 px phone: the page and the dialog
translated and no wider than the screen, and the Push-to-hub dialog refusing a bad repository id
without sending it. No page logs a console error. Screenshots go to
test-results/exports-*.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_helpers import (
    PHONE,
    RAW_KEY,
    api_headers,
    fits,
    login,
    new_context,
    shot,
    sign_up,
    train_tiny_adapter,
    unique,
    watch_console,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "e2e-exports-password"
# The first job may build the demo model; the machine may be shared with other work.
TRAINING_TIMEOUT_S = 300.0
EXPORT_TIMEOUT_MS = 300_000


def test_export_gguf_from_the_model_page(browser: Browser, server: str, tmp_path: Path) -> None:
    context = new_context(browser, server)
    page = context.new_page()
    errors = watch_console(page)
    username = unique("exp")
    try:
        sign_up(page, username, PASSWORD)
        headers = api_headers(page, username, PASSWORD)
        job_id, _ = train_tiny_adapter(page.request, headers, "e2e export run", TRAINING_TIMEOUT_S)
        model_name = f"ft:demo-tiny:lf:{job_id}"

        # Models → the fine-tuned model → its adapter version's Export action.
        page.get_by_test_id("nav-models").click()
        page.locator(f'[data-testid^="model-row-"][data-name="{model_name}"]').click()
        expect(page).to_have_url(re.compile(r"/models/\d+$"))
        model_path = page.url.removeprefix(server)
        expect(page.get_by_test_id("version-row-1")).to_be_visible()
        page.get_by_test_id("version-export-1").click()
        dialog = page.get_by_test_id("export-dialog")
        expect(dialog).to_be_visible()

        # GGUF at Q8_0, with the estimated file size and memory to run it.
        dialog.get_by_test_id("export-format-gguf").click()
        dialog.get_by_test_id("export-quant-q8_0").click()
        expect(dialog.get_by_test_id("export-format-gguf").locator("input")).to_be_checked()
        expect(dialog.get_by_test_id("export-quant-q8_0").locator("input")).to_be_checked()
        # An adapter version may also become a GGUF LoRA.
        expect(dialog.get_by_test_id("export-format-gguf_lora").locator("input")).to_be_enabled()
        expect(dialog.get_by_test_id("export-estimate-size")).to_have_text(re.compile(r"\d.*B"))
        expect(dialog.get_by_test_id("export-estimate-memory")).to_have_text(re.compile(r"\d.*B"))
        shot(page, "exports-1-dialog")
        dialog.get_by_test_id("export-submit").click()

        # The job, followed until the file is read back and compared with the source.
        expect(dialog.get_by_test_id("export-progress")).to_be_visible()
        status = dialog.get_by_test_id("export-status")
        expect(status).to_be_visible(timeout=EXPORT_TIMEOUT_MS)
        expect(dialog.get_by_test_id("export-done")).to_have_text("The export is version v2 of this model.")
        verification = status.get_by_test_id("export-verification")
        expect(verification).to_be_visible()
        # Q8_0 of a tiny model: identical, or at worst a reported agreement; never a failed check.
        expect(verification).to_have_attribute("data-tone", re.compile(r"^(success|warning)$"))
        expect(verification).to_contain_text(re.compile(r"Identical to the source|agree with the source"))
        expect(status.get_by_test_id("export-format")).to_have_text("GGUF")
        expect(status.get_by_test_id("export-quantization")).to_have_text("Q8_0")
        sha256 = status.get_by_test_id("export-sha256").inner_text().strip()
        assert re.fullmatch(r"[0-9a-f]{64}", sha256), sha256
        expect(status.get_by_test_id("export-command-llama_cli")).to_contain_text(
            re.compile(r"llama-cli -m \S+\.gguf")
        )
        shot(page, "exports-2-verified")

        # The GGUF through the UI's download button: the listed size, the GGUF magic.
        button = status.locator('[data-testid="export-file-download"][data-file$=".gguf"]').first
        file_name = button.get_attribute("data-file") or ""
        version_id = _exported_version_id(page, headers, model_path)
        listed = _listed_size(page, headers, version_id, file_name)
        with page.expect_download() as download_info:
            button.click()
        target = tmp_path / "export.gguf"
        download_info.value.save_as(target)
        data = target.read_bytes()
        assert data[:4] == b"GGUF", data[:16]
        assert len(data) == listed, (len(data), listed)

        # The versions table: the new version with its format and quantization, no chat for it.
        dialog.get_by_test_id("export-close").click()
        expect(page.get_by_test_id("version-format-2")).to_have_text("GGUF")
        expect(page.get_by_test_id("version-quant-2")).to_have_text("Q8_0")
        expect(page.get_by_test_id("version-status-2")).to_have_text("ready")
        expect(page.get_by_test_id("version-chat-2")).to_have_count(0)
        page.get_by_test_id("version-row-2").click()
        expect(page.get_by_test_id("model-export-card").get_by_test_id("export-verification")).to_be_visible()
        shot(page, "exports-3-versions")

        # In Chinese on a phone: the page and the dialog translated and within the screen.
        phone = new_context(browser, server, "zh-CN", PHONE)
        try:
            small = phone.new_page()
            errors += watch_console(small)
            login(small, username, PASSWORD)
            small.goto(model_path)
            expect(small.get_by_test_id("version-row-2")).to_be_visible()
            small.get_by_test_id("version-row-2").click()
            expect(small.get_by_test_id("model-export-card")).to_contain_text("验证")
            fits(small, PHONE["width"])
            small.get_by_test_id("version-export-1").click()
            small_dialog = small.get_by_test_id("export-dialog")
            expect(small_dialog).to_contain_text("量化")
            expect(small_dialog.get_by_test_id("export-estimate-size")).to_have_text(re.compile(r"\d.*B"))
            # (The dialog's own text: file names and hashes elsewhere on the page may have dots.)
            for text in (small_dialog.inner_text(), small.get_by_test_id("versions-table").inner_text()):
                assert not RAW_KEY.search(text), f"a message key shows: {RAW_KEY.search(text)}"
            fits(small, PHONE["width"])
            shot(small, "exports-4-phone-zh")

            # Push to a hub (which cannot be reached from here): the dialog opens translated and
            # within the screen, and a bad repository id is refused on its field without a request.
            small.keyboard.press("Escape")
            expect(small_dialog).to_be_hidden()
            pushes: list[str] = []
            small.on("request", lambda r: pushes.append(r.url) if r.url.endswith("/push") else None)
            small.get_by_test_id("version-push-1").click()
            push_dialog = small.get_by_test_id("push-dialog")
            expect(push_dialog).to_contain_text("访问令牌")
            expect(push_dialog.get_by_test_id("push-token")).to_have_attribute("type", "password")
            push_dialog.get_by_test_id("push-repo-id").fill("not a repo")
            push_dialog.get_by_test_id("push-token").fill("hf_not_a_real_token")
            push_dialog.get_by_test_id("push-submit").click()
            expect(push_dialog.locator(".el-form-item__error")).to_contain_text("恰好一个斜杠")
            assert pushes == [], pushes
            assert not RAW_KEY.search(push_dialog.inner_text()), "a message key shows in the push dialog"
            fits(small, PHONE["width"])
            shot(small, "exports-5-push-phone-zh")
        finally:
            phone.close()
        assert errors == [], errors
    finally:
        context.close()


def _exported_version_id(page: Page, headers: dict[str, str], model_path: str) -> int:
    model_id = int(model_path.rsplit("/", 1)[-1])
    versions = page.request.get(f"/api/models/{model_id}/versions", headers=headers)
    assert versions.ok, versions.text()
    return next(int(v["id"]) for v in versions.json()["items"] if v["number"] == 2)


def _listed_size(page: Page, headers: dict[str, str], version_id: int, name: str) -> int:
    """The size the version lists for one of its files (what the download must match)."""
    version = page.request.get(f"/api/models/versions/{version_id}", headers=headers)
    assert version.ok, version.text()
    files = (version.json().get("export") or {}).get("files") or []
    return next(int(f["size"]) for f in files if f["name"] == name)
