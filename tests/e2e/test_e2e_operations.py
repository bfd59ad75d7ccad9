"""The operators' pages in a real browser against a real server of their own (draining its node must
not hold up other modules' jobs), end to end.

An admin's dashboard has the operator panels (nodes, queue, alerts, this month, failures) whose numbers
link to their pages, and follows them over `/ws/operations`; a researcher's has none and cannot open
the nodes page. The nodes page lists the server's own machine with its CPU and memory bars and, without
NVML, the "no GPU telemetry" note. The node page draws its charts from the recorded telemetry, changes
range, and redraws them in the dark theme. With a long CPU job running on the node, the job page offers
Migrate (refused: there is no other node), then the node is drained from the UI (draining while the job
runs, drained once it is cancelled, shown live) and undrained. Then the nodes and node pages in
Chinese on a phone. No page logs a console error. Screenshots go to test-results/operations-*.png.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from browser_helpers import (
    PHONE,
    RAW_KEY,
    api_headers,
    fits,
    login,
    new_context,
    register_and_login,
    shot,
    wait_until,
    watch_console,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "e2e-operations-password"
# The operations loop samples every 5 s; a first job may build the demo model on a shared machine.
TELEMETRY_TIMEOUT_MS = 60_000
JOB_TIMEOUT_S = 240.0


def _admin(page: Page, admin_credentials: tuple[str, str]) -> dict[str, str]:
    username, password = admin_credentials
    login(page, username, password)
    return api_headers(page, username, password)


def _local_node(page: Page, headers: dict[str, str]) -> dict[str, Any]:
    """The server's own node, once the operations loop has recorded a reading of it."""
    found: dict[str, Any] = {}

    def recorded() -> bool:
        answer = page.request.get("/api/nodes", headers=headers)
        assert answer.ok, answer.text()
        for node in answer.json()["items"]:
            if node["kind"] == "local" and node["latest"] is not None:
                found.update(node)
                return True
        return False

    wait_until(recorded, "a reading of the local node", TELEMETRY_TIMEOUT_MS)
    return found


def test_operator_dashboard_nodes_and_node_page(
    browser: Browser, fresh_server: str, admin_credentials: tuple[str, str]
) -> None:
    context = new_context(browser, fresh_server)
    page = context.new_page()
    errors = watch_console(page)
    try:
        headers = _admin(page, admin_credentials)
        node = _local_node(page, headers)
        node_id = node["id"]

        # The dashboard: the operator panels, every number a link to its page.
        page.reload()
        ops = page.get_by_test_id("dashboard-ops")
        expect(ops).to_be_visible()
        for panel in ("nodes", "queue", "alerts", "usage", "failures"):
            expect(ops.get_by_test_id(f"dashboard-panel-ops-{panel}")).to_be_visible()
        expect(ops.get_by_test_id("ops-connection")).to_have_attribute("data-state", "live")
        expect(ops.get_by_test_id("ops-nodes-total")).to_have_text("1")
        expect(ops.get_by_test_id(f"ops-node-{node_id}")).to_contain_text(node["name"])
        expect(ops.get_by_test_id(f"ops-node-cpu-{node_id}")).to_have_text(re.compile(r"CPU \d+%"))
        expect(ops.get_by_test_id("ops-queue-queued")).to_have_attribute("href", "/jobs?tab=queue")
        expect(ops.get_by_test_id("ops-queue-running")).to_have_text("0")
        expect(ops.get_by_test_id("ops-alerts-open")).to_have_attribute("href", "/operations/alerts")
        expect(ops.get_by_test_id("ops-usage-jobs")).to_have_attribute("href", re.compile(r"^/admin/usage"))
        expect(ops.get_by_test_id("ops-storage-used")).to_have_text(re.compile(r"\d.*B$"))
        shot(page, "operations-1-dashboard")

        # The nodes page, from the dashboard's number: the local node, its load, its GPU part.
        ops.get_by_test_id("ops-nodes-total").click()
        expect(page).to_have_url(re.compile(r"/operations/nodes$"))
        card = page.get_by_test_id(f"node-card-{node_id}")
        expect(card).to_have_attribute("data-kind", "local")
        expect(card.get_by_test_id(f"node-link-{node_id}")).to_have_text(node["name"])
        expect(card.get_by_test_id(f"node-status-{node_id}")).to_have_attribute("data-status", "ready")
        expect(card.get_by_test_id(f"node-cpu-{node_id}")).to_contain_text(f"{node['cpus']} cores")
        expect(card.get_by_test_id(f"node-memory-{node_id}")).to_contain_text(re.compile(r"\d.*B of \d.*B"))
        expect(card.get_by_test_id(f"node-disk-{node_id}")).to_contain_text("free of")
        if node["gpu_note"]:
            expect(card.get_by_test_id(f"node-gpu-note-{node_id}")).to_have_text(
                "NVML not available on this node: no GPU telemetry."
            )
        else:
            for gpu in node["latest"]["gpus"]:
                expect(card.get_by_test_id(f"node-{node_id}-gpu-{gpu['index']}-util")).to_be_visible()
        expect(card.get_by_test_id(f"node-drain-{node_id}")).to_be_visible()
        expect(page.get_by_test_id("ops-connection")).to_have_attribute("data-state", "live")
        shot(page, "operations-2-nodes")

        # The node page: charts drawn from the recorded readings, then another range.
        card.get_by_test_id(f"node-link-{node_id}").click()
        expect(page).to_have_url(re.compile(rf"/operations/nodes/{node_id}$"))
        expect(page.get_by_test_id("node-name")).to_have_text(node["name"])
        cpu_chart = page.get_by_test_id("node-chart-cpu")
        for chart in ("cpu", "memory", "disk"):
            expect(page.get_by_test_id(f"node-chart-{chart}").locator("canvas")).to_have_count(1)
        expect(cpu_chart).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
        expect(page.get_by_test_id("node-healthy")).to_be_visible()
        expect(page.get_by_test_id("node-no-jobs")).to_be_visible()
        if node["gpu_note"]:
            expect(page.get_by_test_id("node-gpu-charts-note")).to_contain_text("no GPU telemetry")
        else:
            expect(page.get_by_test_id("node-chart-gpu-utilization").locator("canvas")).to_have_count(1)
        # Live: the socket's readings are appended without reloading the page.
        points = int(cpu_chart.get_attribute("data-points") or 0)
        wait_until(
            lambda: int(cpu_chart.get_attribute("data-points") or 0) > points,
            "a live reading on the chart",
            TELEMETRY_TIMEOUT_MS,
        )
        shot(page, "operations-3-node-page")
        page.get_by_test_id("node-range-6").click()
        expect(page).to_have_url(re.compile(r"hours=6"))
        expect(page.get_by_test_id("node-range-6").locator("input")).to_be_checked()
        expect(cpu_chart.locator("canvas")).to_have_count(1)
        expect(cpu_chart).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))

        # Dark theme: the charts are drawn again in the dark palette.
        page.get_by_test_id("theme-toggle").click()
        expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
        expect(cpu_chart.locator("canvas")).to_have_count(1)
        shot(page, "operations-4-node-page-dark")
        page.get_by_test_id("theme-toggle").click()
        expect(page.locator("html")).not_to_have_class(re.compile(r"\bdark\b"))
        assert errors == [], errors
    finally:
        context.close()


def test_researcher_sees_no_operator_panels(browser: Browser, fresh_server: str) -> None:
    context = new_context(browser, fresh_server)
    page = context.new_page()
    errors = watch_console(page)
    try:
        register_and_login(page, "opsr", PASSWORD)
        expect(page.get_by_test_id("dashboard-panel-queue")).to_be_visible()
        expect(page.get_by_test_id("dashboard-ops")).to_have_count(0)
        expect(page.get_by_test_id("nav-nodes")).to_have_count(0)
        # The page itself is for operators: a researcher typing its address lands on the dashboard.
        page.goto("/operations/nodes")
        expect(page).to_have_url(re.compile(r"/dashboard$"))
        expect(page.get_by_test_id("nodes-page")).to_have_count(0)
        assert errors == [], errors
    finally:
        context.close()


def _start_long_job(page: Page, headers: dict[str, str]) -> int:
    """A tiny-model job with far more steps than the test waits for, running (cancelled later)."""
    created = page.request.post("/api/datasets/samples/forge-demo", headers=headers)
    assert created.status == 201, created.text()
    spec = {
        "model_name_or_path": "demo-tiny",
        "stage": "sft",
        "finetuning_type": "lora",
        "dataset": int(created.json()["dataset"]["id"]),
        "max_steps": 100_000,
        "logging_steps": 1,
        "cutoff_len": 64,
        "per_device_train_batch_size": 1,
        "save_strategy": "no",
    }
    body = {"name": "e2e drain", "spec": spec, "start": True}
    job = page.request.post("/api/jobs", data=body, headers=headers)
    assert job.status == 201, job.text()
    job_id = int(job.json()["id"])
    deadline = time.monotonic() + JOB_TIMEOUT_S
    status = "queued"
    while time.monotonic() < deadline:
        answer = page.request.get(f"/api/jobs/{job_id}", headers=headers)
        assert answer.ok, answer.text()
        status = str(answer.json()["status"])
        if status == "running" or status in {"succeeded", "failed", "cancelled", "stopped"}:
            break
        time.sleep(0.5)
    assert status == "running", f"the job is {status}, not running"
    return job_id


def test_drain_and_undrain_the_local_node(
    browser: Browser, fresh_server: str, admin_credentials: tuple[str, str]
) -> None:
    context = new_context(browser, fresh_server)
    page = context.new_page()
    errors = watch_console(page)
    headers: dict[str, str] = {}
    job_id: int | None = None
    try:
        headers = _admin(page, admin_credentials)
        node = _local_node(page, headers)
        node_id = node["id"]
        job_id = _start_long_job(page, headers)

        # The job page offers Migrate; with one node there is nowhere to go, and it says so.
        page.goto(f"/jobs/{job_id}")
        expect(page.get_by_test_id("job-status")).to_have_attribute("data-status", "running")
        page.get_by_test_id("job-migrate").click()
        page.locator(".el-message-box__btns .el-button--primary").click()
        refusal = page.locator(".el-message--error")
        expect(refusal).to_contain_text("No other node can take this job right now.")
        expect(page.get_by_test_id("job-status")).to_have_attribute("data-status", "running")
        # The browser logs that refusal (provoked on purpose); nothing else may be logged.
        wait_until(lambda: any("status of 409" in e for e in errors), "the logged refusal", 5_000)
        errors.remove(next(e for e in errors if "status of 409" in e))

        # The node page lists the job; drain it and let the job finish: draining while it runs.
        page.goto(f"/operations/nodes/{node_id}")
        status = page.get_by_test_id("node-page-status")
        expect(status).to_have_attribute("data-status", "ready")
        expect(page.get_by_test_id(f"node-job-{job_id}")).to_be_visible()
        page.get_by_test_id(f"node-drain-{node_id}").click()
        page.get_by_test_id(f"node-drain-finish-{node_id}").click()
        box = page.locator(".el-message-box")
        expect(box).to_contain_text("No new jobs will be placed on")
        box.locator(".el-message-box__btns .el-button--primary").click()
        expect(status).to_have_attribute("data-status", "draining")
        expect(status).to_have_attribute("data-drain", "finish")
        expect(status).to_have_text("Draining")
        expect(page.get_by_test_id(f"node-undrain-{node_id}")).to_be_visible()
        expect(page.get_by_test_id(f"node-drain-{node_id}")).to_have_count(0)
        shot(page, "operations-5-draining")

        # The job ends (cancelled here): nothing runs there any more, and the page shows it live.
        cancelled = page.request.post(f"/api/jobs/{job_id}/cancel", headers=headers)
        assert cancelled.ok, cancelled.text()
        job_id = None
        expect(status).to_have_attribute("data-status", "drained", timeout=TELEMETRY_TIMEOUT_MS)
        expect(page.get_by_test_id("node-no-jobs")).to_be_visible(timeout=TELEMETRY_TIMEOUT_MS)
        shot(page, "operations-6-drained")

        # Undrain from the nodes page: ready again.
        page.get_by_test_id("nav-nodes").click()
        card_status = page.get_by_test_id(f"node-status-{node_id}")
        expect(card_status).to_have_attribute("data-status", "drained")
        page.get_by_test_id(f"node-undrain-{node_id}").click()
        page.locator(".el-message-box__btns .el-button--primary").click()
        expect(card_status).to_have_attribute("data-status", "ready")
        expect(page.get_by_test_id(f"node-drain-{node_id}")).to_be_visible()
        answer = page.request.get(f"/api/nodes/{node_id}", headers=headers)
        assert answer.json()["status"] == "ready" and answer.json()["drain_mode"] is None, answer.text()

        # In Chinese on a phone: the nodes and node pages translated, no message key showing, and
        # no wider than the screen.
        zh = new_context(browser, fresh_server, "zh-CN", PHONE)
        try:
            small = zh.new_page()
            errors += watch_console(small)
            login(small, *admin_credentials)
            small.goto("/operations/nodes")
            card = small.get_by_test_id(f"node-card-{node_id}")
            expect(card.get_by_test_id(f"node-status-{node_id}")).to_have_text("就绪")
            expect(card).to_contain_text("内存")
            # (Without the node's own name: a host name may have dots.)
            text = small.get_by_test_id("nodes-page").inner_text().replace(node["name"], "")
            assert not RAW_KEY.search(text), f"a message key shows: {RAW_KEY.search(text)}"
            fits(small, PHONE["width"])
            shot(small, "operations-7-nodes-phone-zh")
            card.get_by_test_id(f"node-link-{node_id}").click()
            expect(small.get_by_test_id("node-range-24")).to_have_text("24 小时")
            expect(small.get_by_test_id("node-chart-cpu").locator("canvas")).to_have_count(1)
            text = small.get_by_test_id("node-page").inner_text().replace(node["name"], "")
            assert not RAW_KEY.search(text), f"a message key shows: {RAW_KEY.search(text)}"
            fits(small, PHONE["width"])
            shot(small, "operations-8-node-phone-zh")
        finally:
            zh.close()
        assert errors == [], errors
    finally:
        if job_id is not None:
            page.request.post(f"/api/jobs/{job_id}/cancel", headers=headers)
        context.close()
