"""The built UI works under the server's Content-Security-Policy: every page renders, the notification
WebSocket connects, and the browser reports no violation (a blocked script, style, image or connection
would be one)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, WebSocket, expect

pytestmark = pytest.mark.e2e

# Violations as the page sees them (the `securitypolicyviolation` event), collected before any script.
_COLLECT = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${where})`);
});
"""
PAGES = (
    "/dashboard", "/datasets", "/jobs", "/jobs/new", "/models", "/deployments", "/providers", "/chat",
    "/playground", "/profile", "/admin/users", "/admin/audit",
)  # fmt: skip


def test_every_page_loads_without_a_policy_violation(page: Page, admin_credentials: tuple[str, str]) -> None:
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    frames: list[str] = []  # what the notification sockets received (connect-src allows them)

    def on_socket(socket: WebSocket) -> None:
        if "/ws/notifications" in socket.url:
            socket.on("framereceived", lambda frame: frames.append(socket.url))

    page.on("websocket", on_socket)
    page.add_init_script(_COLLECT)

    response = page.goto("/login")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval';" in policy and "frame-ancestors 'none'" in policy
    page.get_by_test_id("login-username").fill(admin_credentials[0])
    page.get_by_test_id("login-password").fill(admin_credentials[1])
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_test_id("dashboard")).to_be_visible()

    violations: list[str] = []
    for path in PAGES:
        page.goto(path)  # a full load each time: every page's own chunks and styles
        page.wait_for_load_state("networkidle")
        expect(page.locator("#app")).not_to_be_empty()
        violations += [f"{path}: {v}" for v in page.evaluate("window.__cspViolations")]

    assert violations == []
    assert [line for line in console if "Content Security Policy" in line] == []
    assert frames, "the notification WebSocket received nothing"
