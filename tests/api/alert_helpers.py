"""Helpers for the alert tests: nodes and readings written as the telemetry writes them, the rules run
once, a real webhook receiver on 127.0.0.1, and waiting for something to become true."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from fastapi import FastAPI

from loraforge.db.base import utcnow
from loraforge.db.models import Alert, Node, NodeSample
from loraforge.services.operations import health

T = TypeVar("T")
GB = 1_000_000_000
GPU_INFO = {"index": 0, "name": "Test GPU", "memory_total_bytes": 80 * GB, "slowdown_temperature_c": 88.0}


def wait(predicate: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"still waiting for {what}")


def add_node(app: FastAPI, name: str, *, gpus: list[dict[str, Any]] | None = None) -> int:
    """A node row as a telemetry source creates it (kind `ssh`: nothing else syncs or samples it)."""
    with app.state.db.session() as session:
        info = {"cpus": 8, "memory_total_bytes": 64 * GB, "disk_total_bytes": 500 * GB, "gpus": gpus or []}
        node = Node(name=name, kind="ssh", external_id=name, info=info, health=[], last_seen_at=utcnow())
        session.add(node)
        session.commit()
        return node.id


def reading(
    *, disk_free_gb: float = 100.0, temperature: float = 50.0, throttle: list[str] | None = None,
    gpu_memory_percent: float = 10.0,
) -> dict[str, Any]:  # fmt: skip
    """A NodeSample.data of one node with one GPU."""
    total = GPU_INFO["memory_total_bytes"]
    assert isinstance(total, int)
    used = int(total * gpu_memory_percent / 100)
    gpu = {
        "index": 0, "name": "Test GPU", "utilization": 90.0, "memory_used_bytes": used, "power_w": 300.0,
        "memory_total_bytes": total, "temperature_c": temperature, "throttle": throttle or [],
    }  # fmt: skip
    return {
        "cpu_percent": 20.0, "memory_used_bytes": 8 * GB, "memory_total_bytes": 64 * GB,
        "disk_free_bytes": int(disk_free_gb * GB), "disk_total_bytes": 500 * GB, "gpus": [gpu],
    }  # fmt: skip


def add_sample(app: FastAPI, node_id: int, data: dict[str, Any], *, ts: datetime | None = None) -> None:
    """Store a reading and mark the node seen, as `operations.nodes.record_sample` does."""
    ts = ts or utcnow()
    with app.state.db.session() as session:
        session.add(NodeSample(node_id=node_id, ts=ts, resolution=0, data=data))
        node = session.get(Node, node_id)
        assert node is not None
        node.last_seen_at = ts
        session.commit()


def set_last_seen(app: FastAPI, node_id: int, seconds_ago: float) -> None:
    with app.state.db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None
        node.last_seen_at = utcnow() - timedelta(seconds=seconds_ago)
        session.commit()


def evaluate(app: FastAPI) -> health.Evaluation:
    with app.state.db.session() as session:
        return health.evaluate(session, app.state.settings)


def node_row(app: FastAPI, node_id: int) -> Node:
    with app.state.db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None
        return node


def alerts_of(app: FastAPI, key_prefix: str = "") -> list[Alert]:
    with app.state.db.session() as session:
        rows = session.query(Alert).order_by(Alert.id).all()
        return [a for a in rows if a.key.startswith(key_prefix)]


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that records every JSON body POSTed to it (answers 200)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with receiver.lock:
                    receiver.received.append({"path": self.path, **body})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self, path: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [b for b in self.received if path is None or b["path"] == path]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def raise_test_alert(app: FastAPI, name: str) -> int:
    """An active alert that exists for real (low disk on a node of its own, found by the rules), for
    tests that need one: the cross-user test's `alert` kind, the browser tests."""
    node = add_node(app, name)
    add_sample(app, node, reading(disk_free_gb=0.1))
    evaluate(app)
    (alert,) = [a for a in alerts_of(app, f"disk_free:{node}") if a.status == "open"]
    return alert.id
