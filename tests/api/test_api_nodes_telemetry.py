"""Telemetry storage on real database rows (SQLite, or PostgreSQL with LORAFORGE_TEST_DATABASE_URL):
thinning to one-minute averages per node and per GPU, retention, the charted history, the newest reading
per node, and one round of the operations loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from loraforge.db.models import Node, NodeSample
from loraforge.db.session import Database
from loraforge.executors.local import LocalExecutor
from loraforge.services.operations import loop, nodes, telemetry
from loraforge.settings import Settings

NOW = datetime(2025, 3, 10, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        jwt_secret=SecretStr("test-signing-key-" + "x" * 32),
        telemetry_full_rate_hours=24,
        telemetry_retention_days=7,
    )


@pytest.fixture
def database(settings: Settings) -> Any:
    db = Database(settings.sqlalchemy_url)
    yield db
    db.dispose()


def reading(i: int, *, gpus: int = 2) -> dict[str, Any]:
    return {
        "cpu_percent": float(i),
        "memory_used_bytes": 1000 + i,
        "memory_total_bytes": 4000,
        "disk_free_bytes": 500 - i,
        "disk_total_bytes": 1000,
        "gpus": [
            {
                "index": g,
                "name": f"GPU {g}",
                "utilization": float(10 * g + i),
                "memory_used_bytes": 100 * g + i,
                "memory_total_bytes": 800,
                "temperature_c": 50.0 + g,
                "power_w": None if g == 1 else 100.0 + i,  # GPU 1 cannot read its power
                "throttle": ["sw_power_cap"] if i == 2 else [],
            }
            for g in range(gpus)
        ],
    }


def add_node(session: Any, name: str, kind: str = "ray") -> Node:
    node = Node(name=name, kind=kind, external_id=name, info={}, health=[])
    session.add(node)
    session.flush()
    return node


def test_thinning_averages_each_minute_per_node_and_per_gpu(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One-minute windows: the backlog is worked through in several steps, each minute whole.
    monkeypatch.setattr(telemetry, "_THIN_WINDOW_MINUTES", 1)
    old = NOW - timedelta(hours=30)  # past the 24 h of full rate
    with database.session() as session:
        a = add_node(session, "a")
        b = add_node(session, "b")
        ancient = NOW - timedelta(days=8)  # past the 7 days of retention
        nodes.record_sample(session, a, reading(0), ancient)
        for minute in range(2):
            for k in range(6):  # every 10 s
                ts = old + timedelta(minutes=minute, seconds=10 * k)
                nodes.record_sample(session, a, reading(k + 10 * minute), ts)
        nodes.record_sample(session, b, reading(7, gpus=0), old + timedelta(seconds=5))
        recent = NOW - timedelta(hours=1)
        nodes.record_sample(session, a, reading(99), recent)
        session.commit()

        counts = telemetry.thin(session, settings, NOW)
        session.commit()
        assert counts == {"averaged": 13, "written": 3, "deleted": 1}

        rows = session.scalars(select(NodeSample).order_by(NodeSample.node_id, NodeSample.ts)).all()
        by_node = [(r.node_id, r.ts, r.resolution) for r in rows]
        assert by_node == [
            (a.id, old, 60),
            (a.id, old + timedelta(minutes=1), 60),
            (a.id, recent, 0),
            (b.id, old, 60),
        ]
        first = rows[0].data
        # Minute 0 of node a: readings 0..5.
        assert first["cpu_percent"] == 2.5
        assert first["memory_used_bytes"] == 1002  # rounded mean: integers stay integers
        assert first["disk_free_bytes"] == 498 and first["memory_total_bytes"] == 4000
        gpu0, gpu1 = first["gpus"]
        assert gpu0["index"] == 0 and gpu0["utilization"] == 2.5 and gpu0["power_w"] == 102.5
        assert gpu1["index"] == 1 and gpu1["utilization"] == 12.5 and gpu1["memory_used_bytes"] == 102
        assert gpu1["power_w"] is None  # never read: not a 0 that would chart as a power drop
        assert gpu0["throttle"] == ["sw_power_cap"] and gpu0["name"] == "GPU 0"
        second = rows[1].data
        assert second["cpu_percent"] == 12.5 and second["gpus"][1]["utilization"] == 22.5
        assert second["gpus"][0]["throttle"] == []
        assert rows[3].data["cpu_percent"] == 7.0 and rows[3].data["gpus"] == []
        assert rows[2].data == nodes.clean_sample(reading(99))

        # A second pass has nothing left to do.
        assert telemetry.thin(session, settings, NOW) == {"averaged": 0, "written": 0, "deleted": 0}


def test_newest_reading_is_by_time_not_by_row_id(database: Database, settings: Settings) -> None:
    with database.session() as session:
        a = add_node(session, "a")
        b = add_node(session, "b")
        nodes.record_sample(session, a, reading(1), NOW - timedelta(hours=30))
        nodes.record_sample(session, a, reading(2), NOW - timedelta(hours=2))
        session.commit()
        # The averages are written after (higher ids) but are older than the newest reading.
        telemetry.thin(session, settings, NOW)
        session.commit()
        latest = nodes.latest_samples(session)
        assert set(latest) == {a.id}  # b has never reported
        assert latest[a.id].data["cpu_percent"] == 2.0
        assert nodes.latest_samples(session, [b.id]) == {}


def test_history_is_capped_by_averaging_buckets(database: Database) -> None:
    with database.session() as session:
        a = add_node(session, "a")
        start = NOW - timedelta(hours=2)
        for i in range(1000):
            nodes.record_sample(session, a, reading(i % 4, gpus=1), start + timedelta(seconds=5 * i))
        session.commit()

        points = telemetry.history(session, a.id, start, max_points=500)
        assert len(points) == 500
        assert [p["ts"] for p in points] == sorted(p["ts"] for p in points)
        # Two readings per bucket: (0, 1) → 0.5, (2, 3) → 2.5; the bucket's time is its last reading's.
        assert [p["cpu_percent"] for p in points[:2]] == [0.5, 2.5]
        assert points[0]["ts"].replace(tzinfo=UTC) == start + timedelta(seconds=5)
        assert points[0]["gpus"] == [
            {
                "index": 0,
                "utilization": 0.5,
                "memory_used_bytes": 0,
                "memory_total_bytes": 800,
                "temperature_c": 50.0,
                "power_w": 100.5,
            }
        ]
        # Fewer readings than the cap come back one by one; `since` bounds the range.
        since = start + timedelta(seconds=5 * 990)
        tail = telemetry.history(session, a.id, since, max_points=500)
        assert [p["cpu_percent"] for p in tail] == [float(i % 4) for i in range(990, 1000)]


def test_record_sample_cleans_and_skips_a_reading_already_stored(database: Database) -> None:
    with database.session() as session:
        a = add_node(session, "a")
        ts = NOW - timedelta(seconds=10)
        junk = {
            "cpu_percent": float("nan"),
            "memory_used_bytes": -5,
            "memory_total_bytes": True,
            "disk_free_bytes": "lots",
            "extra": {"x": 1},
            "gpus": [{"index": 0, "utilization": 5, "throttle": ["hw_slowdown", 3]}, {"name": "no index"}, 7],
        }
        stored = nodes.record_sample(session, a, junk, ts)
        assert stored is not None
        assert stored.data == {
            "cpu_percent": None,
            "memory_used_bytes": None,
            "memory_total_bytes": None,
            "disk_free_bytes": None,
            "disk_total_bytes": None,
            "gpus": [
                {
                    "index": 0,
                    "name": None,
                    "utilization": 5.0,
                    "memory_used_bytes": None,
                    "memory_total_bytes": None,
                    "temperature_c": None,
                    "power_w": None,
                    "throttle": ["hw_slowdown"],
                }
            ],
        }
        assert a.last_seen_at == ts
        # The same agent file read again (same time) stores nothing.
        assert nodes.record_sample(session, a, reading(1), ts) is None
        session.commit()
        assert len(session.scalars(select(NodeSample)).all()) == 1


def test_one_loop_round_samples_the_host_and_marks_silent_nodes_lost(
    database: Database, settings: Settings
) -> None:
    with database.session() as session:
        silent = add_node(session, "silent-ray-node")
        silent.last_seen_at = datetime.now(UTC) - timedelta(seconds=settings.node_lost_seconds + 60)
        silent.status = "ready"
        session.commit()
        silent_id = silent.id

    state = loop.LoopState(next_thin=1e18)
    loop.tick(settings, database, state, executor=LocalExecutor(), clock=0.0)
    loop.tick(settings, database, state, executor=LocalExecutor(), clock=1.0)
    assert state.failures == {}
    with database.session() as session:
        local = session.scalars(select(Node).where(Node.kind == "local")).one()
        assert local.status == "ready" and local.info["cpus"] >= 1
        samples = session.scalars(select(NodeSample).where(NodeSample.node_id == local.id)).all()
        assert len(samples) == 2
        assert 0.0 <= samples[-1].data["cpu_percent"] <= 100.0
        silent_node = session.get(Node, silent_id)
        assert silent_node is not None and silent_node.status == "lost"

    # Thinning runs once its period is due (and not before).
    state.next_thin = 5.0
    with database.session() as session:
        local_id = session.scalars(select(Node.id).where(Node.kind == "local")).one()
        old = nodes.get_node(session, local_id)
        session.add(NodeSample(node_id=old.id, ts=datetime.now(UTC) - timedelta(days=30), data=reading(1)))
        session.commit()
    loop.tick(settings, database, state, executor=LocalExecutor(), clock=2.0)
    with database.session() as session:
        assert len(session.scalars(select(NodeSample).where(NodeSample.node_id == local_id)).all()) == 4
    loop.tick(settings, database, state, executor=LocalExecutor(), clock=6.0)
    assert state.next_thin == 6.0 + loop.THIN_EVERY_SECONDS
    with database.session() as session:
        rows = session.scalars(select(NodeSample).where(NodeSample.node_id == local_id)).all()
        assert len(rows) == 4  # the 30-day-old reading went, a new one came
        assert all(r.ts.replace(tzinfo=UTC) > datetime.now(UTC) - timedelta(hours=1) for r in rows)
