"""The app on a phone (390 px) and on a laptop (1440 px), with no console errors anywhere.

On a phone every main page must be usable: the sidebar is a drawer that stays shut until the menu
button opens it, nothing makes the page wider than the screen, and each table keeps its key column in
view (scrolling sideways inside itself, no action column pinned over it). At 1440 px the admin's users
table shows its date columns whole.
"""

from __future__ import annotations

import re

import pytest
from browser_helpers import LAPTOP, PHONE, login, watch_console
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.e2e

# path -> (a test id the page shows once loaded, the header of each table's key column)
MAIN_PAGES: dict[str, tuple[str, list[str]]] = {
    "/dashboard": ("dashboard-panel-host", []),
    "/datasets": ("dataset-table", ["Name"]),
    "/jobs": ("jobs-page", ["Name"]),
    "/models": ("models-table", ["Name"]),
    "/chat": ("chat-page", []),
    "/playground": ("playground-history", ["When"]),
    "/admin/users": ("user-table", ["Username"]),
    "/admin/audit": ("audit-table", ["Time"]),
    "/profile": ("api-key-table", ["Name"]),
}


# For each titled column of the users table: every cell (header included) must end left of the pinned
# action column, show its text whole, and keep it on one line.
DATE_COLUMNS_JS = """titles => {
  const table = document.querySelector('[data-testid="user-table"]')
  const actions = table.querySelector('thead th.el-table-fixed-column--right').getBoundingClientRect()
  const heads = [...table.querySelectorAll('.el-table__header-wrapper thead th')]
  const rows = [...table.querySelectorAll('.el-table__body-wrapper tbody tr')]
  const bad = []
  for (const title of titles) {
    const index = heads.findIndex(th => th.textContent.trim() === title)
    if (index < 0) { bad.push(`no column ${title}`); continue }
    for (const cell of [heads[index], ...rows.map(tr => tr.children[index])]) {
      const right = cell.getBoundingClientRect().right
      const inner = cell.querySelector('.cell')
      const text = inner.textContent
      const lineHeight = parseFloat(getComputedStyle(inner).lineHeight)
      if (right > actions.left + 1) bad.push(`${title}: under the actions (${right} > ${actions.left})`)
      if (inner.scrollWidth > inner.clientWidth + 1) bad.push(`${title}: cut "${text}"`)
      if (inner.getBoundingClientRect().height > lineHeight * 1.5) bad.push(`${title}: wraps "${text}"`)
    }
  }
  return { bad, rows: rows.length }
}"""


def _page_width(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def _key_header(page: Page, title: str) -> Locator:
    # Element Plus draws a fixed column twice (the real one and a hidden twin): take the visible one.
    cells = page.locator(".el-table__header th .cell", has_text=re.compile(rf"^{title}$"))
    return cells.locator("visible=true")


def test_every_main_page_is_usable_on_a_phone(page: Page, admin_credentials: tuple[str, str]) -> None:
    page.set_viewport_size(PHONE)
    errors = watch_console(page)

    # Signed out: the login and register pages fit and log nothing.
    page.goto("/login")
    expect(page.get_by_test_id("login-form")).to_be_visible()
    page.get_by_test_id("go-register").click()
    expect(page.get_by_test_id("register-form")).to_be_visible()
    assert _page_width(page) <= PHONE["width"]
    page.goto("/login")
    expect(page.get_by_test_id("login-form")).to_be_visible()
    assert _page_width(page) <= PHONE["width"]
    assert errors == [], errors

    login(page, *admin_credentials)
    # A dataset, so the datasets table has a row whose name must stay in view.
    page.goto("/datasets")
    page.get_by_test_id("dataset-import-sample-top").click()
    expect(page.get_by_test_id("dataset-table")).to_be_visible()

    for path, (ready, key_columns) in MAIN_PAGES.items():
        page.goto(path)
        expect(page.get_by_test_id(ready)).to_be_visible()
        expect(page.get_by_test_id("sidebar")).to_be_hidden()
        expect(page.get_by_test_id("nav-menu")).to_be_visible()
        expect(page.get_by_test_id("header-more")).to_be_in_viewport()
        assert _page_width(page) <= PHONE["width"], path
        for title in key_columns:
            header = _key_header(page, title)
            header.scroll_into_view_if_needed()
            expect(header).to_be_in_viewport(ratio=1)
            box = header.bounding_box()
            assert box is not None, (path, title)
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (path, box)
        # On a phone no action column is pinned over the rest (it would leave room for nothing else).
        expect(page.locator(".el-table-fixed-column--right")).to_have_count(0)

    # The datasets table scrolls sideways inside itself with the name pinned.
    page.goto("/datasets")
    name_cell = page.locator(".el-table__body td.el-table-fixed-column--left").locator("visible=true").first
    expect(name_cell).to_be_in_viewport()
    scroller = page.locator(".el-table__body-wrapper .el-scrollbar__wrap").first
    scroller.evaluate("el => { el.scrollLeft = 400 }")
    expect(name_cell).to_be_in_viewport()
    assert _page_width(page) <= PHONE["width"]

    # The drawer: opened by the menu button, closed again by choosing a page.
    page.get_by_test_id("nav-menu").click()
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    page.get_by_test_id("nav-models").click()
    expect(page).to_have_url(re.compile(r"/models$"))
    expect(page.get_by_test_id("sidebar")).to_be_hidden()

    # The header's overflow menu holds language, theme and the account.
    page.get_by_test_id("header-more").click()
    page.get_by_test_id("more-theme").click()
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    page.get_by_test_id("header-more").click()
    page.get_by_test_id("more-logout").click()
    expect(page).to_have_url(re.compile(r"/login"))

    assert errors == [], errors


def test_admin_users_table_at_1440(page: Page, admin_credentials: tuple[str, str]) -> None:
    page.set_viewport_size(LAPTOP)
    errors = watch_console(page)
    login(page, *admin_credentials)
    page.get_by_test_id("nav-admin-users").click()
    admin = admin_credentials[0]
    expect(page.get_by_test_id(f"user-row-{admin}")).to_be_visible()

    # Created and Last login stand whole left of the pinned action column, each date on one line and
    # not cut: every cell of the two columns, header included.
    report = page.evaluate(DATE_COLUMNS_JS, ["Created", "Last login"])
    assert report["rows"] >= 1 and report["bad"] == [], report

    # The admin's own row offers no change the server refuses, and says why.
    expect(page.get_by_test_id(f"user-toggle-{admin}")).to_be_disabled()
    expect(page.get_by_test_id(f"user-delete-{admin}")).to_be_disabled()
    expect(page.get_by_test_id(f"role-select-{admin}").locator("input")).to_be_disabled()
    page.get_by_test_id(f"user-self-guard-{admin}").hover()
    expect(page.get_by_text("You cannot change your own role, disable or delete yourself")).to_be_visible()

    assert errors == [], errors
