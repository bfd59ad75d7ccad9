"""STUB (nodes & telemetry helper replaces this): Prometheus gauges of nodes and GPUs for /metrics."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from loraforge.db.session import Database


class NodeCollector(Collector):
    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[Metric]:
        return iter(())
