"""Browser end-to-end fixtures: the built UI, a real `loraforge serve`, and Debian's Chromium.

Nothing here is skipped: a missing build or browser is a failure that says how to fix it.
A failing test leaves a screenshot in `test-results/` at the repository root.
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
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
DIST_INDEX = REPO_ROOT / "src" / "loraforge" / "web" / "dist" / "index.html"
RESULTS_DIR = REPO_ROOT / "test-results"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "e2e-Admin-Passw0rd!"
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_GRACE_S = 10.0
UI_TIMEOUT_MS = 15_000


def _loraforge_executable() -> Path:
    for candidate in (REPO_ROOT / ".venv" / "bin" / "loraforge", Path(sys.executable).parent / "loraforge"):
        if candidate.is_file():
            return candidate
    pytest.fail("the `loraforge` command is missing: run the README's setup command (it creates .venv)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(data_dir: Path) -> dict[str, str]:
    # Start from the caller's environment minus any LORAFORGE_* (a developer's own database URL
    # or admin settings must not leak into the test server).
    env = {key: value for key, value in os.environ.items() if not key.startswith("LORAFORGE_")}
    env.update(
        {
            "LORAFORGE_DATA_DIR": str(data_dir),
            "LORAFORGE_ADMIN_USERNAME": ADMIN_USERNAME,
            "LORAFORGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LORAFORGE_LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"loraforge serve exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{base_url}/api/health", timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.2)
    pytest.fail(f"server not healthy after {SERVER_START_TIMEOUT_S:.0f}s ({last_error}):\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server by its PID: SIGTERM, then SIGKILL after a grace period."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=SERVER_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=SERVER_STOP_GRACE_S)


@pytest.fixture(scope="session")
def built_ui() -> Path:
    if not DIST_INDEX.is_file():
        pytest.fail(
            f"{DIST_INDEX.relative_to(REPO_ROOT)} is missing: build the web UI first with "
            "`cd frontend && npm ci && npm run build`"
        )
    return DIST_INDEX


@contextmanager
def _serving(data_dir: Path) -> Iterator[str]:
    """A real `loraforge serve` on a free loopback port with `data_dir` and the e2e admin; its URL."""
    log_path = data_dir / "server.log"
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(_loraforge_executable()), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=_server_env(data_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(base_url, process, log_path)
        yield base_url
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def server(built_ui: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server most tests share: each of them registers users of its own."""
    with _serving(tmp_path_factory.mktemp("e2e-data")) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def fresh_server(built_ui: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of the module's own on an empty data directory: what a new installation shows (no
    other test's users, jobs or models in the lists, the admin's user table holding two rows)."""
    with _serving(tmp_path_factory.mktemp("e2e-fresh-data")) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def admin_credentials() -> tuple[str, str]:
    """Username and password of the admin the server creates on first start."""
    return ADMIN_USERNAME, ADMIN_PASSWORD


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium with "
            "`apt-get install -y --no-install-recommends chromium` (Playwright must not download one)"
        )
    browser = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, server: str) -> Iterator[BrowserContext]:
    # An English browser, so the UI starts in English and the test switches it to Chinese.
    context = browser.new_context(
        base_url=server, locale="en-US", color_scheme="light", viewport={"width": 1400, "height": 900}
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    page = context.new_page()
    # Uncaught exceptions in the app fail the test even when the UI happens to look right.
    # (Console messages are not collected here: a test that provokes a refusal on purpose, a taken
    # name or a request after logout, makes the browser log it. test_responsive.py and test_journey.py
    # check with browser_helpers.watch_console that pages log nothing in normal use, signed out included.)
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    yield page
    report = getattr(request.node, "rep_call", None)
    failed = report is not None and report.failed
    if failed or page_errors:
        RESULTS_DIR.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        try:
            page.screenshot(path=str(RESULTS_DIR / f"{name}.png"), full_page=True)
        except Exception as exc:  # a screenshot must never hide the real failure
            print(f"could not save a screenshot: {exc}", file=sys.stderr)
    if page_errors and not failed:
        pytest.fail("uncaught errors in the page:\n" + "\n".join(page_errors))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    # Keep each phase's report on the item so the `page` fixture knows whether the test failed.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
