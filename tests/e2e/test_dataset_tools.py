"""Dataset tools and the prompt library in a real browser against a real server.

The detection evidence of an uploaded file and a column mapping saved as a new version (with the
server's refusal of a mapping that leaves no valid row shown first); the import dialog
(dataset_info.json with its data files, the hub unreachable from here, the server-path tab only
for the staff and disabled by default); the prompt library managed from the chat page.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser_helpers import api_token, login, register_and_login, unique
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

USER_PASSWORD = "e2e-tools-password"


def _pick(page: Page, select_test_id: str, option_test_id: str) -> None:
    page.get_by_test_id(select_test_id).click()
    # Element Plus teleports the options to <body>; only the open list is visible.
    page.get_by_test_id(option_test_id).locator("visible=true").click()


# Alpaca rows with two extra columns the detection cannot know about: better answers, a system prompt.
ROWS = [
    {"instruction": question, "input": "", "output": short, "better": better, "sys": "Be brief."}
    for question, short, better in (
        ("Add one and one.", "2", "Two, exactly."),
        ("Name a colour.", "Blue", "Blue, like the sky."),
        ("Capital of France?", "Paris", "It is Paris."),
    )
]


def test_detection_evidence_and_column_mapping(page: Page) -> None:
    token = api_token(page, register_and_login(page, "tina", USER_PASSWORD), USER_PASSWORD)
    body = "".join(json.dumps(row) + "\n" for row in ROWS)
    created = page.request.post(
        "/api/datasets",
        headers={"Authorization": f"Bearer {token}"},
        multipart={
            "file": {"name": "answers.jsonl", "mimeType": "application/json", "buffer": body.encode()},
            "name": "e2e-answers",
        },
    )
    assert created.status == 201, created.text()
    dataset_id = created.json()["dataset"]["id"]

    # The evidence: detected alpaca from every sampled row, the keys that said so, the raw first row.
    page.goto(f"/datasets/{dataset_id}?tab=detection")
    panel = page.get_by_test_id("detection-panel")
    expect(panel.get_by_test_id("detection-format")).to_have_text("Alpaca")
    expect(panel.get_by_test_id("detection-source")).to_have_text("Detected from the rows")
    expect(panel.get_by_test_id("detection-confidence")).to_contain_text("100%")
    expect(panel.get_by_test_id("detection-confidence")).to_contain_text("3 of 3 sampled rows")
    expect(panel.get_by_test_id("detection-vote-alpaca")).to_contain_text("first at row 1")
    for key in ("instruction", "input", "output"):
        expect(panel.get_by_test_id(f"detection-key-{key}")).to_be_visible()
    expect(panel.get_by_test_id("detection-key-better")).to_have_count(0)
    expect(panel.get_by_test_id("detection-file-type")).to_have_text("jsonl")
    expect(panel.get_by_test_id("detection-mapped-prompt")).to_contain_text("instruction")
    expect(panel.get_by_test_id("detection-sample")).to_contain_text('"better": "Two, exactly."')

    # The mapping dialog starts from the current mapping; a prompt column that is not in the file
    # leaves every row invalid: the preview says why, and so does the server when saving anyway.
    panel.get_by_test_id("detection-map-columns").click()
    dialog = page.get_by_test_id("mapping-dialog")
    expect(dialog.get_by_test_id("mapping-source")).to_contain_text("answers.jsonl")
    expect(dialog.get_by_test_id("mapping-valid-count")).to_have_text("3 of 3 sampled rows valid")
    dialog.get_by_test_id("mapping-role-prompt").click()
    page.keyboard.type("question")
    page.keyboard.press("Enter")
    expect(dialog.get_by_test_id("mapping-preview-error").first).to_contain_text("question: missing")
    dialog.get_by_test_id("mapping-save").click()
    expect(dialog.get_by_test_id("mapping-error")).to_contain_text("no valid rows")
    expect(page.get_by_test_id("dataset-version")).to_have_text("v1")

    # A sensible mapping: the better answers and the system column; the preview shows them.
    _pick(page, "mapping-role-prompt", "mapping-option-prompt-instruction")
    _pick(page, "mapping-role-response", "mapping-option-response-better")
    _pick(page, "mapping-role-system", "mapping-option-system-sys")
    preview = dialog.get_by_test_id("mapping-preview-row").first
    expect(preview).to_contain_text("Two, exactly.")
    expect(preview).to_contain_text("Be brief.")
    dialog.get_by_test_id("mapping-message").fill("use the better answers")
    dialog.get_by_test_id("mapping-save").click()
    expect(dialog).to_be_hidden()

    # v2, read with the mapping: the evidence says so, the preview has the better answers.
    expect(page.get_by_test_id("dataset-version")).to_have_text("v2")
    expect(panel.get_by_test_id("detection-source")).to_have_text("From a column mapping")
    expect(panel.get_by_test_id("detection-mapped-response")).to_contain_text("better")
    expect(panel.get_by_test_id("detection-mapped-system")).to_contain_text("sys")
    page.locator("#tab-preview").click()
    expect(page.get_by_test_id("dataset-preview")).to_contain_text("Two, exactly.")
    page.locator("#tab-versions").click()
    expect(page.get_by_test_id("version-2")).to_contain_text("use the better answers")


def test_import_dialog(page: Page, tmp_path: Path) -> None:
    register_and_login(page, "tina", USER_PASSWORD)
    info = tmp_path / "dataset_info.json"
    info.write_text(
        json.dumps(
            {
                "e2e_identity": {"file_name": "identity.jsonl"},
                "e2e_missing": {"file_name": "elsewhere.jsonl"},
                "e2e_remote": {"hf_hub_url": "org/remote"},
            }
        ),
        encoding="utf-8",
    )
    data = tmp_path / "identity.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")

    page.goto("/datasets")
    page.get_by_test_id("dataset-import").click()
    dialog = page.get_by_test_id("import-dialog")
    # A researcher sees no server-path tab (the path import is for the staff).
    expect(dialog.locator("#tab-hub")).to_be_visible()
    expect(dialog.locator("#tab-path")).to_have_count(0)

    # dataset_info.json: its entries, which files are attached, then what the server made of them.
    dialog.get_by_test_id("import-info-file").locator("input[type=file]").set_input_files(str(info))
    expect(dialog.get_by_test_id("import-entry-e2e_identity")).to_have_text("file missing")
    dialog.get_by_test_id("import-info-data").locator("input[type=file]").set_input_files(str(data))
    expect(dialog.get_by_test_id("import-entry-e2e_identity")).to_have_text("file attached")
    expect(dialog.get_by_test_id("import-entry-e2e_missing")).to_have_text("file missing")
    expect(dialog.get_by_test_id("import-entry-e2e_remote")).to_have_text("hub entry: skipped")
    dialog.get_by_test_id("import-submit").click()
    result = dialog.get_by_test_id("import-result")
    # Unasked-for hub entries are left out without a word; a missing file is reported.
    expect(result).to_contain_text("Created 1, skipped 1, failed 0")
    expect(result.get_by_test_id("import-created-e2e_identity")).to_contain_text("3 rows")
    expect(result.get_by_test_id("import-skipped-e2e_missing")).to_contain_text("was not provided")
    expect(page.get_by_test_id("dataset-row-e2e_identity")).to_be_visible()

    # The hub: a malformed repository id is refused on its field; a well-formed one cannot be
    # reached from here, and the server's reason shows above the form.
    dialog.locator("#tab-hub").click()
    dialog.get_by_test_id("import-hub-repo").fill("not a repo!")
    dialog.get_by_test_id("import-submit").click()
    repo_item = dialog.locator(".el-form-item").filter(has=page.get_by_test_id("import-hub-repo"))
    expect(repo_item.locator(".el-form-item__error")).to_be_visible()
    dialog.get_by_test_id("import-hub-repo").fill(f"loraforge-e2e/{unique('absent')}")
    dialog.get_by_test_id("import-submit").click()
    # Offline (as the test suite runs) the answer is immediate; with a network that cannot resolve
    # the hub, huggingface_hub retries for about 25 s first.
    expect(dialog.get_by_test_id("import-error")).to_contain_text("Hugging Face Hub", timeout=60_000)
    expect(repo_item.locator(".el-form-item__error")).to_have_count(0)


def test_server_path_import_for_the_staff(page: Page, admin_credentials: tuple[str, str]) -> None:
    login(page, *admin_credentials)
    page.goto("/datasets")
    page.get_by_test_id("dataset-import").click()
    dialog = page.get_by_test_id("import-dialog")
    dialog.locator("#tab-path").click()
    dialog.get_by_test_id("import-path-path").fill("/etc/passwd")
    dialog.get_by_test_id("import-submit").click()
    # This server allows no import folders: the path import is disabled, and says how to allow it.
    expect(dialog.get_by_test_id("import-error")).to_contain_text("LORAFORGE_DATASET_IMPORT_ROOTS")


def test_prompt_library_management(page: Page) -> None:
    register_and_login(page, "tina", USER_PASSWORD)
    name = unique("reviewer")
    page.goto("/chat")
    page.get_by_test_id("chat-system-prompt").fill("You review {{language}} code.")
    page.get_by_test_id("chat-prompt-manage-open").click()
    manager = page.get_by_test_id("prompt-manager")

    # A new prompt starts from the system prompt being written; a blank name is caught before sending.
    manager.get_by_test_id("prompt-new").click()
    expect(manager.get_by_test_id("prompt-content")).to_have_value("You review {{language}} code.")
    expect(manager.get_by_test_id("prompt-variables")).to_contain_text("language")
    manager.get_by_test_id("prompt-save").click()
    expect(manager.get_by_text("Name is required")).to_be_visible()
    manager.get_by_test_id("prompt-name").fill(name)
    manager.get_by_test_id("prompt-save").click()
    expect(manager.get_by_test_id(f"prompt-row-{name}")).to_be_visible()

    # The same name again: the server's 409 shows on the name field.
    manager.get_by_test_id("prompt-new").click()
    manager.get_by_test_id("prompt-name").fill(name)
    manager.get_by_test_id("prompt-content").fill("Another text.")
    manager.get_by_test_id("prompt-save").click()
    name_item = manager.locator(".el-form-item").filter(has=page.get_by_test_id("prompt-name"))
    expect(name_item.locator(".el-form-item__error")).to_contain_text("already")
    manager.get_by_test_id("prompt-back").click()

    # Edit: the text and the shared flag change.
    manager.get_by_test_id(f"prompt-edit-{name}").click()
    manager.get_by_test_id("prompt-content").fill("You review {{language}} code for {{team}}.")
    manager.get_by_test_id("prompt-shared").click()
    manager.get_by_test_id("prompt-save").click()
    row = manager.locator(".el-table__row").filter(has=page.get_by_test_id(f"prompt-row-{name}"))
    expect(row).to_contain_text("team")
    expect(row).to_contain_text("shared")

    # The picker lists it and leads to the same manager; delete asks first.
    page.keyboard.press("Escape")
    expect(manager).to_be_hidden()
    page.get_by_test_id("chat-prompt-library").click()
    picker = page.get_by_test_id("chat-prompt-picker")
    expect(picker.get_by_test_id("chat-prompt").filter(has_text=name)).to_be_visible()
    picker.get_by_test_id("chat-prompt-manage").click()
    manager = page.get_by_test_id("prompt-manager").locator("visible=true")
    manager.get_by_test_id(f"prompt-delete-{name}").click()
    page.locator(".el-message-box").get_by_role("button", name="Delete").click()
    expect(manager.get_by_test_id(f"prompt-row-{name}")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(picker.get_by_test_id("chat-prompt").filter(has_text=name)).to_have_count(0)
