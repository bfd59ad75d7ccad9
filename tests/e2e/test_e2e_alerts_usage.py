"""Alerts, usage and account links in a real browser against a real server of this module's own, whose
mail goes to a real SMTP server (aiosmtpd on loopback) started here, end to end.

- My usage: a researcher's finished two-step demo job appears on My usage with its run time, CPU time
  and tokens; the month's totals count it; the 12 months show as a table too. An admin sets the
  researcher's GPU-hours quota in the users page's dialog and the researcher sees the bar; the admin's
  usage report lists the researcher and downloads as CSV through the page's button; the prices card
  saves. Then My usage in Chinese and dark.
- Alerts: an admin raises the free-disk threshold on the Alert rules page far above the disk this
  machine has, so the health check on the server's own node trips for real; the alert shows on the
  Alerts page (severity, the node's link) and in the header's bell; it is acknowledged, then resolved
  in the UI (the resolved list names who did it). Putting the rule back to its default clears the alert
  the still-failing check had raised again, by itself. Then the page in Chinese and dark.
- Password reset and invitation: "Forgot password?" on the login page mails a link; the browser follows
  the mailed link, sets a new password, and signs in with it (the old one is refused, the link works
  once). An admin invites a user from the users page; the invitation mail's link sets their password.

The rule change makes the node take no new jobs while it holds, so this module has its own server and
runs the usage test first. Screenshots go to test-results/alerts-usage-*.png.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    wait_until,
    watch_console,
)
from playwright.sync_api import Browser, Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
# tests/api's SMTP server, shared with the API tests (a sibling folder, so not importable by default).
from smtp_server import SmtpServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "e2e-usage-password"
NEW_PASSWORD = "e2e-brand-new-passphrase"
# The first job may build the demo model; the machine may be shared with other work.
TRAINING_TIMEOUT_S = 300.0
# Telemetry every second here: an alert is raised (or clears) within a few checks; the alerts page
# refreshes itself every 10 s.
TELEMETRY_INTERVAL_S = "1"
ALERT_TIMEOUT_MS = 45_000
USAGE_TIMEOUT_MS = 30_000
# Far more free space than any disk here has: the disk-free check trips on the server's own node.
HUGE_DISK_GB = "100000000"


# ----- a server of this module's own, its mail going to the SMTP server below -----


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"loraforge serve exited with {process.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/api/health", timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"server not healthy after 60s:\n{log_path.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def ops_server(
    built_ui: Path,
    smtp: SmtpServer,
    admin_credentials: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("e2e-alerts-usage-data")
    executable = REPO_ROOT / ".venv" / "bin" / "loraforge"
    if not executable.is_file():
        executable = Path(sys.executable).parent / "loraforge"
    # The caller's LORAFORGE_* stay out (a developer's own database or SMTP must not leak in).
    env = {key: value for key, value in os.environ.items() if not key.startswith("LORAFORGE_")}
    env.update(
        {
            "LORAFORGE_DATA_DIR": str(data_dir),
            "LORAFORGE_ADMIN_USERNAME": admin_credentials[0],
            "LORAFORGE_ADMIN_PASSWORD": admin_credentials[1],
            "LORAFORGE_LOG_LEVEL": "warning",
            "LORAFORGE_TELEMETRY_INTERVAL_SECONDS": TELEMETRY_INTERVAL_S,
            "PYTHONUNBUFFERED": "1",
            **smtp.env(),
        }
    )
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(executable), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(base_url, process, log_path)
        yield base_url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _to_dark_chinese(page: Page) -> None:
    page.get_by_test_id("theme-toggle").click()
    page.get_by_test_id("locale-switch").click()
    page.get_by_test_id("locale-option-zh-CN").click()


def _no_raw_keys(page: Page, test_id: str) -> None:
    text = page.get_by_test_id(test_id).inner_text()
    found = RAW_KEY.search(text)
    assert found is None, f"a message key shows: {found.group(0) if found else ''}"


# ----- usage -----


def test_my_usage_quota_and_the_admin_report(
    browser: Browser, ops_server: str, admin_credentials: tuple[str, str], tmp_path: Path
) -> None:
    context = new_context(browser, ops_server)
    page = context.new_page()
    errors = watch_console(page)
    username = unique("use")
    try:
        sign_up(page, username, PASSWORD)
        headers = api_headers(page, username, PASSWORD)
        job_id, _ = train_tiny_adapter(page.request, headers, "e2e usage run", TRAINING_TIMEOUT_S)

        # The attempt's usage row is completed on a scheduler tick after the job ends: wait for that
        # through the API (what the page shows is compared with it below).
        item: dict[str, Any] = {}

        def accounted() -> bool:
            answer = page.request.get("/api/usage/me", headers=headers)
            assert answer.ok, answer.text()
            for found in answer.json()["items"]:
                if found["job_id"] == job_id and found["finished_at"] is not None:
                    item.update(found)
                    return True
            return False

        wait_until(accounted, "the finished job's usage", USAGE_TIMEOUT_MS)

        # My usage, from the sidebar: the job with what it used.
        page.get_by_test_id("nav-usage-mine").click()
        expect(page).to_have_url(re.compile(r"/usage\?month=\d{4}-\d{2}$"))
        expect(page.get_by_test_id(f"usage-job-{job_id}")).to_have_text("e2e usage run")
        assert item["wall_seconds"] > 0 and item["tokens"] > 0, item
        expect(page.get_by_test_id(f"usage-wall-{job_id}")).to_have_text(
            re.compile(r"^(\d+h )?(\d+m )?\d+s$")
        )
        expect(page.get_by_test_id(f"usage-tokens-{job_id}")).to_have_text(f"{item['tokens']:,}")
        # CPU hours as the server counts them (a job shorter than one resource sample has none).
        expect(page.get_by_test_id(f"usage-cpu-{job_id}")).to_have_text(
            "0" if item["cpu_hours"] == 0 else re.compile(r"^0?\.\d+$|^\d[\d,.]*$")
        )
        expect(page.get_by_test_id("usage-total-jobs")).to_contain_text("1")
        expect(page.get_by_test_id("usage-total-cost")).to_contain_text("No prices set")
        expect(page.get_by_test_id("quota-gpu_hours")).to_have_attribute("data-state", "unlimited")
        # The last 12 months as a table: this month first.
        page.get_by_test_id("usage-history-table").click()
        month = page.url.rsplit("=", 1)[-1]
        expect(page.get_by_test_id("usage-history-rows").locator(".el-table__row").first).to_contain_text(
            month
        )
        shot(page, "alerts-usage-1-my-usage")

        # The admin gives the researcher a GPU-hours quota in the users page's dialog.
        admin = new_context(browser, ops_server)
        try:
            admin_page = admin.new_page()
            errors += watch_console(admin_page)
            login(admin_page, *admin_credentials)
            admin_page.get_by_test_id("nav-admin-users").click()
            admin_page.get_by_test_id("user-search").fill(username)
            admin_page.get_by_test_id("user-search-submit").click()
            # Four actions in the row, none cut off by the column (the quota one is an icon).
            actions = admin_page.locator(".el-table__body td.el-table-fixed-column--right .cell").first
            expect(actions.get_by_test_id(f"user-delete-{username}")).to_be_visible()
            assert actions.evaluate("cell => cell.scrollWidth <= cell.clientWidth"), (
                "the row's actions are cut"
            )
            admin_page.get_by_test_id(f"user-quota-{username}").click()
            dialog = admin_page.get_by_test_id("quota-dialog")
            expect(dialog.get_by_test_id("quota-effective-gpu_hours_per_month")).to_contain_text("no limit")
            dialog.get_by_test_id("quota-default-gpu_hours_per_month").click()
            dialog.get_by_test_id("quota-gpu_hours_per_month").locator("input").fill("10")
            dialog.get_by_test_id("quota-gpu_hours_per_month").locator("input").press("Tab")
            shot(admin_page, "alerts-usage-2a-quota-dialog")
            dialog.get_by_test_id("quota-save").click()
            expect(admin_page.locator(".el-message--success").last).to_contain_text(
                f"Quotas of {username} saved"
            )
            expect(dialog).to_be_hidden()

            # Prices: saved and read back.
            card = admin_page.get_by_test_id("prices-card")
            card.get_by_test_id("price-gpu-hour").locator("input").fill("2.5")
            card.get_by_test_id("price-gpu-hour").locator("input").press("Tab")
            card.get_by_test_id("prices-save").click()
            expect(admin_page.locator(".el-message--success").last).to_contain_text("Prices saved")
            admin_page.reload()
            expect(admin_page.get_by_test_id("price-gpu-hour").locator("input")).to_have_value("2.5")

            # The usage report: the researcher's row, and the CSV through the page's button.
            admin_page.get_by_test_id("nav-usage-all").click()
            expect(admin_page.get_by_test_id(f"usage-user-jobs-{username}")).to_have_text("1")
            with admin_page.expect_download() as download_info:
                admin_page.get_by_test_id("usage-csv").click()
            download = download_info.value
            assert download.suggested_filename == f"usage-{month}.csv", download.suggested_filename
            target = tmp_path / "usage.csv"
            download.save_as(target)
            csv_text = target.read_text()
            assert "username" in csv_text.splitlines()[0], csv_text[:200]
            assert any(username in line for line in csv_text.splitlines()[1:]), csv_text[:500]
            shot(admin_page, "alerts-usage-2-report")
        finally:
            admin.close()

        # The researcher sees the new quota as a bar; then the page in Chinese and dark.
        page.reload()
        expect(page.get_by_test_id("quota-gpu_hours")).to_have_attribute("data-state", "ok")
        expect(page.get_by_test_id("quota-gpu_hours")).to_contain_text("of 10")
        _to_dark_chinese(page)
        expect(page.get_by_test_id("usage-mine")).to_contain_text("我的用量")
        expect(page.get_by_test_id("usage-total-jobs")).to_contain_text("任务数")
        _no_raw_keys(page, "usage-mine")
        shot(page, "alerts-usage-3-my-usage-dark-zh")
        assert errors == [], errors
    finally:
        context.close()


# ----- alerts -----


def test_a_real_alert_acknowledged_and_resolved(
    browser: Browser, ops_server: str, admin_credentials: tuple[str, str]
) -> None:
    context = new_context(browser, ops_server)
    page = context.new_page()
    errors = watch_console(page)
    try:
        login(page, *admin_credentials)

        # Alert rules: the free-disk threshold far above this machine's disk.
        page.get_by_test_id("nav-alert-rules").click()
        expect(page.get_by_test_id("rule-default-disk_free_gb")).to_contain_text("Default: 5 GB")
        expect(page.get_by_test_id("rule-changed-disk_free_gb")).to_have_count(0)
        disk = page.get_by_test_id("rule-disk_free_gb").locator("input")
        disk.fill(HUGE_DISK_GB)
        disk.press("Tab")
        page.get_by_test_id("rules-save").click()
        expect(page.locator(".el-message--success").last).to_contain_text("Alert rules saved")
        expect(page.get_by_test_id("rule-changed-disk_free_gb")).to_be_visible()
        expect(page.get_by_test_id("rule-reset-disk_free_gb")).to_be_enabled()
        shot(page, "alerts-usage-4-rules")

        # The alert, raised by the server's own health check on its own node.
        page.get_by_test_id("nav-alerts").click()
        rows = page.locator('[data-testid^="alert-row-"][data-rule="disk_free"]')
        expect(rows.first).to_be_visible(timeout=ALERT_TIMEOUT_MS)
        alert_id = int((rows.first.get_attribute("data-testid") or "").removeprefix("alert-row-"))
        expect(rows.first).to_contain_text("GB free")
        expect(page.get_by_test_id(f"alert-status-{alert_id}")).to_have_attribute("data-status", "open")
        expect(page.get_by_test_id(f"alert-severity-{alert_id}")).to_have_text(
            re.compile(r"^(Critical|Warning)$")
        )
        expect(page.get_by_test_id(f"alert-node-{alert_id}")).to_have_attribute(
            "href", re.compile(r"/operations/nodes/\d+$")
        )
        # The header's bell counts it.
        expect(page.get_by_test_id("alert-bell-count").locator("sup")).to_have_text(re.compile(r"^[1-9]\d*$"))
        page.get_by_test_id("alert-bell").click()
        expect(page.get_by_test_id(f"alert-bell-item-{alert_id}")).to_be_visible()
        page.keyboard.press("Escape")
        shot(page, "alerts-usage-5-raised")

        # Acknowledge: someone is on it (and the bell, which counts unacknowledged ones, clears).
        page.get_by_test_id(f"alert-ack-{alert_id}").click()
        expect(page.locator(".el-message--success").last).to_contain_text("Alert acknowledged")
        expect(page.get_by_test_id(f"alert-status-{alert_id}")).to_have_attribute(
            "data-status", "acknowledged"
        )
        expect(page.get_by_test_id(f"alert-handling-{alert_id}")).to_contain_text(
            f"Acknowledged by {admin_credentials[0]}"
        )
        expect(page.get_by_test_id(f"alert-ack-{alert_id}")).to_have_count(0)
        expect(page.get_by_test_id("alert-bell-count").locator("sup")).to_be_hidden()

        # Resolve, after the confirmation; it leaves the active list and shows under Resolved.
        page.get_by_test_id(f"alert-resolve-{alert_id}").click()
        page.locator(".el-message-box").get_by_role("button", name="Resolve").click()
        expect(page.locator(".el-message--success").last).to_contain_text("Alert resolved")
        expect(page.get_by_test_id(f"alert-row-{alert_id}")).to_have_count(0)
        page.get_by_test_id("alert-filter-resolved").click()
        expect(page).to_have_url(re.compile(r"status=resolved"))
        expect(page.get_by_test_id(f"alert-status-{alert_id}")).to_have_attribute("data-status", "resolved")
        expect(page.get_by_test_id(f"alert-handling-{alert_id}")).to_contain_text(
            f"Resolved by {admin_credentials[0]}"
        )
        shot(page, "alerts-usage-6-resolved")

        # The rule back to its default: the alert the still-failing check raised again clears by itself.
        page.get_by_test_id("nav-alert-rules").click()
        page.get_by_test_id("rule-reset-disk_free_gb").click()
        expect(page.get_by_test_id("rule-changed-disk_free_gb")).to_have_count(0)
        expect(page.get_by_test_id("rule-disk_free_gb").locator("input")).to_have_value("5")
        page.get_by_test_id("nav-alerts").click()
        expect(page.locator('[data-testid^="alert-row-"][data-rule="disk_free"]')).to_have_count(
            0, timeout=ALERT_TIMEOUT_MS
        )
        page.get_by_test_id("alert-filter-resolved").click()
        expect(page.get_by_test_id("alert-table")).to_contain_text(
            "Cleared by itself", timeout=ALERT_TIMEOUT_MS
        )

        # In Chinese and dark.
        _to_dark_chinese(page)
        expect(page.get_by_test_id("alerts-view")).to_contain_text("告警")
        expect(page.get_by_test_id(f"alert-status-{alert_id}")).to_have_text("已解决")
        _no_raw_keys(page, "alerts-view")
        shot(page, "alerts-usage-7-dark-zh")
        page.get_by_test_id("nav-alert-rules").click()
        expect(page.get_by_test_id("rule-default-disk_free_gb")).to_contain_text("默认值")
        _no_raw_keys(page, "alert-rules-view")
        assert errors == [], errors
    finally:
        context.close()


# ----- on a phone -----

# path -> a test id the page shows once loaded
PHONE_PAGES = {
    "/usage": "usage-totals",
    "/operations/alerts": "alert-table",
    "/operations/alert-rules": "rules-form",
    "/admin/usage": "usage-report",
    "/admin/users": "prices-card",
}


def test_the_pages_fit_a_phone(browser: Browser, ops_server: str, admin_credentials: tuple[str, str]) -> None:
    context = new_context(browser, ops_server, "zh-CN", PHONE)
    page = context.new_page()
    errors = watch_console(page)
    try:
        for path, ready in {"/forgot-password": "forgot-form", "/reset-password": "reset-invalid"}.items():
            page.goto(path)
            expect(page.get_by_test_id(ready)).to_be_visible()
            fits(page, PHONE["width"])
        login(page, *admin_credentials)
        expect(page.get_by_test_id("alert-bell")).to_be_in_viewport()
        for path, ready in PHONE_PAGES.items():
            page.goto(path)
            expect(page.get_by_test_id(ready)).to_be_visible()
            fits(page, PHONE["width"])
            expect(page.get_by_test_id("header-more")).to_be_in_viewport()
        page.goto("/usage")
        expect(page.get_by_test_id("usage-totals")).to_be_visible()
        shot(page, "alerts-usage-10-phone-zh")
        assert errors == [], errors
    finally:
        context.close()


# ----- password reset and invitation, through real mail -----


def _mailed_link(smtp: SmtpServer, address: str, base_url: str) -> str:
    message = smtp.wait_for(lambda m: address in m.rcpt_tos)
    links = [link for link in message.links() if "/reset-password?token=" in link]
    assert links, message.body
    assert links[0].startswith(f"{base_url}/reset-password?token="), links[0]
    return links[0]


def test_forgot_password_and_invitation_through_mail(
    browser: Browser, ops_server: str, smtp: SmtpServer, admin_credentials: tuple[str, str]
) -> None:
    context = new_context(browser, ops_server)
    page = context.new_page()
    try:
        username = unique("fgt")
        email = f"{username}@example.com"
        # Registered apart: registering signs in, and this browser must arrive logged out.
        setup = new_context(browser, ops_server)
        try:
            registered = setup.request.post(
                "/api/auth/register", data={"username": username, "email": email, "password": PASSWORD}
            )
            assert registered.status == 201, registered.text()
        finally:
            setup.close()

        # "Forgot password?" on the login page, the address typed there carried over.
        page.goto("/login")
        page.get_by_test_id("login-username").fill(email)
        page.get_by_test_id("go-forgot-password").click()
        expect(page).to_have_url(re.compile(r"/forgot-password"))
        expect(page.get_by_test_id("forgot-email")).to_have_value(email)
        page.get_by_test_id("forgot-submit").click()
        expect(page.get_by_test_id("forgot-sent")).to_contain_text(email)
        shot(page, "alerts-usage-8-forgot-sent")

        # The mailed link, followed in the browser: a new password, then sign in with it.
        link = _mailed_link(smtp, email, ops_server)
        page.goto(link)
        expect(page.get_by_test_id("reset-form")).to_be_visible()
        page.get_by_test_id("reset-password").fill(NEW_PASSWORD)
        page.get_by_test_id("reset-confirm").fill(NEW_PASSWORD)
        page.get_by_test_id("reset-submit").click()
        expect(page).to_have_url(re.compile(r"/login\?"))
        expect(page.get_by_test_id("login-notice")).to_contain_text("Your password is set")
        expect(page.get_by_test_id("login-username")).to_have_value(username)
        old = page.request.post(
            "/api/auth/login",
            data={"username_or_email": username, "password": PASSWORD, "remember_me": False},
        )
        assert old.status == 401, old.text()
        page.get_by_test_id("login-password").fill(NEW_PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page).to_have_url(re.compile(r"/dashboard$"))

        # The link worked once.
        page.get_by_test_id("user-menu").click()
        page.get_by_test_id("logout").click()
        expect(page).to_have_url(re.compile(r"/login"))
        page.goto(link)
        page.get_by_test_id("reset-password").fill("yet-another-passphrase")
        page.get_by_test_id("reset-confirm").fill("yet-another-passphrase")
        page.get_by_test_id("reset-submit").click()
        expect(page.get_by_test_id("reset-invalid")).to_contain_text("not valid")
        expect(page.get_by_test_id("reset-request-new")).to_be_visible()

        # An invitation from the users page; its mail's link sets the new user's password.
        login(page, *admin_credentials)
        page.get_by_test_id("nav-admin-users").click()
        page.get_by_test_id("user-invite").click()
        dialog = page.get_by_test_id("invite-dialog")
        invited = unique("inv")
        invited_email = f"{invited}@example.com"
        dialog.get_by_test_id("invite-username").fill(invited)
        dialog.get_by_test_id("invite-email").fill(invited_email)
        dialog.get_by_test_id("invite-submit").click()
        expect(page.locator(".el-message--success").last).to_contain_text(
            f"Invitation sent to {invited_email}"
        )
        expect(dialog).to_be_hidden()
        expect(page.get_by_test_id(f"user-row-{invited}")).to_be_visible()
        invite_link = _mailed_link(smtp, invited_email, ops_server)
        assert "invite=1" in invite_link, invite_link
        page.get_by_test_id("user-menu").click()
        page.get_by_test_id("logout").click()
        expect(page).to_have_url(re.compile(r"/login"))
        page.goto(invite_link)
        expect(page.locator(".auth-title")).to_have_text("Welcome! Choose your password")
        page.get_by_test_id("reset-password").fill(NEW_PASSWORD)
        page.get_by_test_id("reset-confirm").fill(NEW_PASSWORD)
        page.get_by_test_id("reset-submit").click()
        expect(page.get_by_test_id("login-username")).to_have_value(invited)
        page.get_by_test_id("login-password").fill(NEW_PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page).to_have_url(re.compile(r"/dashboard$"))
        shot(page, "alerts-usage-9-invited")
    finally:
        context.close()
