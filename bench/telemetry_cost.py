"""What node telemetry costs the server: CPU % of one core spent by the operations loop at the default
interval. Prints one JSON object.

The real loop (`services/operations/loop.run`: sample the host, store the reading in SQLite, evaluate the
health rules, refresh node statuses) runs in this process, alone, on a migrated temp database, for
`--seconds` (default 60) after its first round; the process's CPU time (every thread: getrusage) over
that window, divided by the wall time, is the figure. Also: the CPU time of one bare reading
(`node_sampler.sample`, 200 in a row) and of one whole round. Goal: ≤ 1 % of one core.

Usage: .venv/bin/python bench/telemetry_cost.py [--seconds 60] [--interval 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

from loraforge.db.migrate import migrate
from loraforge.db.session import Database
from loraforge.executors import node_sampler
from loraforge.services.operations import loop
from loraforge.services.platform.event_hub import EventHub
from loraforge.settings import Settings


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(settings: Settings, database: Database, seconds: float) -> dict[str, float]:
    hub = EventHub()
    with hub.subscribe(loop.OPS_CHANNEL) as sub:
        task = asyncio.create_task(loop.run(settings, database, hub, executor_name="local"))
        try:
            first = await sub.get(timeout=60)  # the first round (NVML open, static facts read) is start-up
            assert first is not None, "the loop did not finish a round in 60 s"
            cpu0, wall0 = _cpu_seconds(), time.monotonic()
            rounds = 0
            deadline = wall0 + seconds
            while (left := deadline - time.monotonic()) > 0:
                if await sub.get(timeout=left) is not None:
                    rounds += 1
            cpu, wall = _cpu_seconds() - cpu0, time.monotonic() - wall0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return {"cpu_s": cpu, "wall_s": wall, "rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=None, help="default: the setting's default")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lf-bench-telemetry-") as tmp:
        overrides = {"telemetry_interval_seconds": args.interval} if args.interval else {}
        settings = Settings(data_dir=Path(tmp) / "data", **overrides)
        migrate(settings.sqlalchemy_url)
        database = Database(settings.sqlalchemy_url)
        try:
            window = asyncio.run(_measure(settings, database, args.seconds))
            # One bare reading, and one whole round (sample + store + rules + statuses), CPU time each.
            node_sampler.sample(settings.data_dir)
            reads = []
            for _ in range(200):
                started = time.thread_time()
                node_sampler.sample(settings.data_dir)
                reads.append((time.thread_time() - started) * 1000)
            state = loop.LoopState(next_thin=float("inf"))
            loop.tick(settings, database, state, executor_name="local")
            rounds = []
            for _ in range(50):
                started = time.thread_time()
                loop.tick(settings, database, state, executor_name="local")
                rounds.append((time.thread_time() - started) * 1000)
        finally:
            database.dispose()
    print(
        json.dumps(
            {
                "bench": "telemetry_cost",
                "interval_s": settings.telemetry_interval_seconds,
                "window_s": round(window["wall_s"], 1),
                "rounds_in_window": int(window["rounds"]),
                "loop_cpu_s": round(window["cpu_s"], 3),
                "loop_cpu_percent_of_one_core": round(100 * window["cpu_s"] / window["wall_s"], 3),
                "sample_cpu_ms_p50": round(statistics.median(reads), 3),
                "round_cpu_ms_p50": round(statistics.median(rounds), 2),
                "gpus": len(node_sampler.sample(settings.data_dir)["gpus"]),
                "nvml": node_sampler.nvml_available(),
                "goal_percent": 1.0,
            }
        )
    )


if __name__ == "__main__":
    main()
