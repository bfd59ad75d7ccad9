"""Usage reports and prices: /api/usage/me shows only the caller's usage, the admin report in JSON and
CSV (parsed), prices turn usage into cost, storage of a user, role checks.

Accounting runs for real (`services.usage.accounting.sync` on the test's database) over jobs admitted
by the real scheduler with an executor that records launches; the engine's `resource` events such a
job would send are inserted as rows, so the CPU integral has a known answer. A real engine run is
test_api_usage_run.py's.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from job_helpers import HUB_MODEL, RecordingExecutor, create_job, sample_dataset, tiny_spec

from loraforge.db.base import utcnow
from loraforge.db.models import Job, JobEvent, JobStatus, JobUsage
from loraforge.db.session import Database
from loraforge.services.jobs.scheduler import Scheduler
from loraforge.services.jobs.states import transition
from loraforge.services.usage import accounting
from loraforge.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.scheduler_enabled = False
    settings.max_running_jobs_per_user = 8
    settings.gpu_count = 2
    return settings


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.sqlalchemy_url)
    yield db
    db.dispose()


def _usage_row(database: Database, owner_id: int, **values: Any) -> None:
    started = values.pop("started_at", utcnow())
    with database.session() as session:
        session.add(
            JobUsage(
                owner_id=owner_id, month=started.strftime("%Y-%m"), started_at=started,
                finished_at=started + timedelta(seconds=values.get("wall_seconds", 0.0)), **values,
            )
        )  # fmt: skip
        session.commit()


def _me(api: Api, who: Account, **params: Any) -> dict[str, Any]:
    response = api.client.get("/api/usage/me", params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_sync_integrates_resource_events_and_prices_the_attempt(
    api: Api, settings: Settings, database: Database
):
    alice, admin = api.account("alice"), api.admin()
    response = api.client.put(
        "/api/admin/usage/prices", json={"gpu_hour": 2.0, "cpu_hour": 0.5, "currency": "EUR"},
        headers=admin.headers,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json() == {
        "gpu_hour": 2.0, "cpu_hour": 0.5, "currency": "EUR",
        "defaults": {"gpu_hour": None, "cpu_hour": None, "currency": "USD"},
    }  # fmt: skip
    assert api.audit(admin, action="ops.settings_changed")[0]["details"]["to"]["gpu_hour"] == 2.0

    dataset = sample_dataset(api.client, alice)["id"]
    spec = tiny_spec(dataset, model_name_or_path=HUB_MODEL, devices=[0, 1], resource_interval_seconds=5)
    job_id = create_job(api.client, alice, spec, start=True)["id"]
    executor = RecordingExecutor()
    Scheduler(settings, database, executor).tick()  # admitted with two GPUs
    assert executor.launched == [job_id]

    with database.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.started_at is not None and job.devices == [0, 1]
        t0 = job.started_at.timestamp()
        # What the engine sends every 5 s: the mean CPU over the attempt's samples so far, and the peak.
        events = [
            (1, "resource", t0 + 6, {"cpu_pct": 100.0, "cpu_avg_pct": 100.0, "peak_rss_mb": 300.0}),
            (2, "metric", t0 + 8, {"step": 1, "tokens_total": 120, "peak_rss_mb": 250.0}),
            (3, "resource", t0 + 16, {"cpu_pct": 200.0, "cpu_avg_pct": 150.0, "peak_rss_mb": 512.0}),
            (4, "metric", t0 + 17, {"step": 2, "tokens_total": 250}),
        ]
        for seq, kind, ts, data in events:
            session.add(JobEvent(job_id=job_id, seq=seq, type=kind, ts=ts, data={"type": kind, **data}))
        session.commit()
        end = job.started_at + timedelta(seconds=20)
        transition(session, job, JobStatus.succeeded, now=end)  # what the watcher does at the end
        session.commit()
        accounting.sync(session, settings=settings, now=end + timedelta(seconds=5))
        row = session.query(JobUsage).filter_by(job_id=job_id).one()
        assert row.finished_at == end and row.wall_seconds == pytest.approx(20.0)
        # 150 % of a core over the span the two samples cover (10 s apart, plus the first interval).
        assert row.cpu_seconds == pytest.approx(1.5 * 15.0)
        assert (row.gpu_count, row.gpu_seconds) == (2, pytest.approx(40.0))
        assert row.peak_memory_bytes == 512 * 1024 * 1024 and row.tokens == 250
        assert row.cost == pytest.approx(2.0 * 40.0 / 3600 + 0.5 * 22.5 / 3600, abs=1e-6)
        assert row.month == job.started_at.strftime("%Y-%m")

    me = _me(api, alice)
    assert me["totals"]["cost"] == pytest.approx(row.cost) and me["totals"]["currency"] == "EUR"
    (item,) = me["items"]
    assert (item["job_id"], item["attempt"], item["gpu_count"], item["tokens"]) == (job_id, 1, 2, 250)
    assert item["gpu_hours"] == pytest.approx(40.0 / 3600, abs=1e-6)

    # Resetting the prices (null) goes back to the defaults: no price, no cost for new usage.
    response = api.client.put("/api/admin/usage/prices", json={}, headers=admin.headers)
    assert response.json()["gpu_hour"] is None and response.json()["currency"] == "USD"


def test_me_shows_only_the_callers_usage(api: Api, settings: Settings, database: Database):
    alice, bob = api.account("alice"), api.account("bob")
    _usage_row(database, alice.id, attempt=1, wall_seconds=3600.0, gpu_count=1, gpu_seconds=3600.0, tokens=7)
    _usage_row(database, bob.id, attempt=1, wall_seconds=600.0, cpu_seconds=1200.0, tokens=5, cost=1.25)
    last_month = utcnow().replace(day=1) - timedelta(days=3)
    _usage_row(database, bob.id, attempt=2, wall_seconds=60.0, cpu_seconds=60.0, started_at=last_month)

    mine = _me(api, bob)
    assert mine["month"] == utcnow().strftime("%Y-%m")
    assert mine["totals"] == {
        "jobs": 1, "wall_hours": pytest.approx(600 / 3600, abs=1e-6),
        "cpu_hours": pytest.approx(1 / 3, abs=1e-6), "gpu_hours": 0.0, "peak_memory_bytes": 0,
        "tokens": 5, "cost": 1.25, "currency": "USD",
    }  # fmt: skip
    assert [i["tokens"] for i in mine["items"]] == [5] and mine["items_total"] == 1
    assert len(mine["months"]) == 12 and mine["months"][-1]["month"] == mine["month"]
    assert mine["months"][-2] == {
        "month": last_month.strftime("%Y-%m"), "gpu_hours": 0.0,
        "cpu_hours": pytest.approx(60 / 3600, abs=1e-6), "cost": None,
    }  # fmt: skip
    earlier = _me(api, bob, month=last_month.strftime("%Y-%m"))
    assert [i["attempt"] for i in earlier["items"]] == [2]
    # Alice's usage shows nowhere in bob's answer, and vice versa.
    assert _me(api, alice)["totals"]["gpu_hours"] == 1.0 and _me(api, alice)["items"][0]["tokens"] == 7

    assert_error(api.client.get("/api/usage/me", params={"month": "2024-13"}, headers=bob.headers), 422,
                 field="query.month")  # fmt: skip
    # There is no way to name another user: an unknown parameter changes nothing.
    assert _me(api, bob, user_id=alice.id)["totals"]["tokens"] == 5
    assert_error(api.client.get("/api/usage/me"), 401)


def test_storage_of_a_user_counts_what_they_own(api: Api, settings: Settings):
    alice, bob = api.account("alice"), api.account("bob")
    assert _me(api, alice)["storage_bytes"] == 0
    dataset = sample_dataset(api.client, alice)
    folder = settings.data_dir / "datasets" / str(dataset["id"])
    expected = _walk(folder)
    assert expected > 0 and _me(api, alice)["storage_bytes"] == expected
    assert _me(api, bob)["storage_bytes"] == 0

    # A job's run directory is the owner's too; a hard link counts once.
    job_id = create_job(api.client, alice, tiny_spec(dataset["id"], model_name_or_path=HUB_MODEL))["id"]
    run_dir = settings.runs_dir / str(job_id)
    run_dir.mkdir(parents=True)
    (run_dir / "engine.log").write_bytes(b"x" * 1000)
    os.link(run_dir / "engine.log", run_dir / "again.log")
    assert _me(api, alice)["storage_bytes"] == expected + 1000


def _walk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_admin_report_json_and_csv(api: Api, settings: Settings, database: Database):
    alice, bob, admin = api.account("alice"), api.account("bob"), api.admin()
    _usage_row(database, alice.id, job_id=None, attempt=1, wall_seconds=7200.0, gpu_count=2,
               gpu_seconds=14400.0, cpu_seconds=3600.0, tokens=1000, cost=10.0)  # fmt: skip
    _usage_row(database, alice.id, job_id=None, attempt=2, wall_seconds=3600.0, cpu_seconds=1800.0, cost=0.5)
    _usage_row(database, bob.id, attempt=1, wall_seconds=1800.0, cpu_seconds=900.0, tokens=10)

    report = api.client.get("/api/admin/usage", headers=admin.headers).json()
    rows = {r["username"]: r for r in report["rows"]}
    assert set(rows) == {"admin", "alice", "bob"} and report["currency"] == "USD"
    assert rows["alice"] == {
        "user_id": alice.id, "username": "alice", "jobs": 2, "wall_hours": 3.0, "cpu_hours": 1.5,
        "gpu_hours": 4.0, "tokens": 1000, "storage_bytes": 0, "cost": 10.5,
    }  # fmt: skip
    assert rows["bob"]["cost"] is None and rows["admin"]["jobs"] == 0
    assert report["totals"]["jobs"] == 3 and report["totals"]["cost"] == 10.5
    assert report["totals"]["gpu_hours"] == 4.0

    response = api.client.get(
        "/api/admin/usage", params={"format": "csv", "month": report["month"]}, headers=admin.headers
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == f'attachment; filename="usage-{report["month"]}.csv"'
    lines = list(csv.DictReader(io.StringIO(response.text)))
    by_name = {line["username"]: line for line in lines}
    assert [line["username"] for line in lines] == ["admin", "alice", "bob", "total"]
    assert by_name["alice"]["user_id"] == str(alice.id) and float(by_name["alice"]["gpu_hours"]) == 4.0
    assert float(by_name["alice"]["cost"]) == 10.5 and by_name["bob"]["cost"] == ""
    assert int(by_name["total"]["jobs"]) == 3 and by_name["total"]["currency"] == "USD"

    # Another month has nothing; a month that is not one is refused with the parameter named.
    empty = api.client.get("/api/admin/usage", params={"month": "2001-01"}, headers=admin.headers).json()
    assert empty["totals"]["jobs"] == 0 and empty["totals"]["cost"] is None
    assert_error(api.client.get("/api/admin/usage", params={"month": "01-2001"}, headers=admin.headers), 422,
                 field="query.month")  # fmt: skip
    assert_error(api.client.get("/api/admin/usage", params={"format": "xml"}, headers=admin.headers), 422,
                 field="query.format")  # fmt: skip


def test_admin_usage_routes_refuse_researchers_and_operators(api: Api, settings: Settings):
    alice, olga = api.account("alice"), api.account("olga", role="operator")
    for who in (alice, olga):
        for method, path, body in (
            ("GET", "/api/admin/usage", None),
            ("GET", "/api/admin/usage?format=csv", None),
            ("GET", "/api/admin/usage/prices", None),
            ("PUT", "/api/admin/usage/prices", {"gpu_hour": 0}),
        ):
            response = api.client.request(method, path, json=body, headers=who.headers)
            assert_error(response, 403, "forbidden")
    assert_error(api.client.get("/api/admin/usage"), 401)
    bad = api.client.put("/api/admin/usage/prices", json={"gpu_hour": -1}, headers=api.admin().headers)
    assert_error(bad, 422, field="body.gpu_hour")
