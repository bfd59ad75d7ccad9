"""The Ray node sync's pieces that need no cluster: what a node's stored facts are made of, which report
files are read, and a Ray that cannot be reached (the live cluster is `test_api_drain_ray.py`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from ray_head import free_port

from loraforge.db.base import utcnow
from loraforge.db.models import Node
from loraforge.db.session import Database
from loraforge.executors import ray_telemetry
from loraforge.services.operations import ray_nodes
from loraforge.settings import Settings

NODE_ID = "ab" * 28


def test_node_facts_take_rays_gpu_count_and_the_agents_details():
    entry = {
        "node_id": NODE_ID, "state": "ALIVE", "is_head_node": True,
        "resources_total": {"CPU": 8.0, "GPU": 2.0, "memory": 1e9},
        "labels": {"ray.io/node-id": NODE_ID, "zone": "x" * 500},
    }  # fmt: skip
    h100 = {"index": 0, "name": "H100", "memory_total_bytes": 80e9, "slowdown_temperature_c": 90}
    facts = {
        "cpus": 16, "memory_total_bytes": 64e9, "disk_total_bytes": -1,
        "gpus": [h100, "junk", {"index": 7, "name": "unseen by Ray"}],
    }  # fmt: skip
    report = {"node_id": NODE_ID, "ts": 1.0, "gpu_note": None, "info": facts}
    info = ray_nodes.node_info(entry, report)
    # Ray's own numbers decide placement: 8 CPUs and 2 GPUs (NVML's facts where it has the index).
    assert info["cpus"] == 8 and info["is_head"] is True
    assert info["gpus"] == [
        {"index": 0, "name": "H100", "memory_total_bytes": 80_000_000_000, "slowdown_temperature_c": 90.0},
        {"index": 1, "name": None, "memory_total_bytes": None, "slowdown_temperature_c": None},
    ]
    assert info["memory_total_bytes"] == 64_000_000_000 and info["disk_total_bytes"] is None
    assert info["labels"]["ray.io/node-id"] == NODE_ID and len(info["labels"]["zone"]) == 200

    # No report this round (the agent is starting again): the facts it gave before stay.
    again = ray_nodes.node_info(entry, None, previous=info)
    assert again == info
    assert ray_nodes.node_info({"resources_total": {}}, None)["gpus"] == []


def test_reports_are_read_by_node_id_only(tmp_path: Path):
    (tmp_path / f"{NODE_ID}.json").write_text(json.dumps({"node_id": NODE_ID, "ts": 5.0, "sample": {}}))
    assert ray_telemetry.read_report(tmp_path, NODE_ID) == {"node_id": NODE_ID, "ts": 5.0, "sample": {}}
    # Never a path built from anything but a Ray node id; a file that names another node is not its.
    (tmp_path / "secret.json").write_text(json.dumps({"node_id": "../secret", "ts": 1.0}))
    for bad in ("../secret", "secret", "", NODE_ID.upper(), f"{NODE_ID}/../secret"):
        assert ray_telemetry.read_report(tmp_path, bad) is None
    other = "cd" * 28
    (tmp_path / f"{other}.json").write_text(json.dumps({"node_id": NODE_ID, "ts": 5.0}))
    assert ray_telemetry.read_report(tmp_path, other) is None
    (tmp_path / f"{other}.json").write_text("{half a fi")
    assert ray_telemetry.read_report(tmp_path, other) is None


def test_sync_with_ray_unreachable_changes_nothing_and_says_so_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
):
    settings = settings.model_copy(
        update={"executor": "ray", "ray_address": f"http://127.0.0.1:{free_port()}"}
    )
    database = Database(settings.sqlalchemy_url)
    seen = utcnow()
    try:
        with database.session() as session:
            session.add(Node(name="n", kind="ray", external_id=NODE_ID, status="ready", last_seen_at=seen))
            session.commit()
        with caplog.at_level(logging.WARNING, logger="loraforge.operations"):
            for _ in range(3):
                with database.session() as session:
                    ray_nodes.sync(session, settings)
                    session.commit()
        warnings = [r.getMessage() for r in caplog.records if "Ray node sync" in r.getMessage()]
        assert len(warnings) == 1 and "cannot list the Ray nodes" in warnings[0]
        with database.session() as session:
            node = session.query(Node).one()
            assert (node.status, node.last_seen_at) == ("ready", seen)
    finally:
        database.dispose()
