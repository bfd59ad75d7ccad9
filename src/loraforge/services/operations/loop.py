"""The operations loop of the server's lifespan: every `telemetry_interval_seconds` one round, in a worker
thread so the event loop stays free for requests and WebSockets.

A round: sample the server's own host (always, whatever the executor: it runs the server, and with the
local executor the jobs too), sync Ray nodes when the executor is Ray (`operations.ray_nodes`), evaluate
the health rules (`operations.health`), recompute every node's status (a silent node turns lost) and,
about every ten minutes, thin old telemetry. Each step commits on its own, so a failing step costs only
its own writes; a failing round is logged and the loop goes on. After each round `{"type": "nodes"}` is
published on the hub channel `ops` (the operations WebSockets refresh on it).

Cheap by construction: one reading per interval (NVML kept open, `executors/node_sampler.py`), one row
per node per reading, and the thinning's work spread over its ten-minute period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from loraforge.db.base import utcnow
from loraforge.db.session import Database
from loraforge.executors import node_sampler
from loraforge.executors.base import Executor
from loraforge.services.operations import health, nodes, ray_nodes, telemetry
from loraforge.services.platform.event_hub import EventHub
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.operations")

OPS_CHANNEL = "ops"
THIN_EVERY_SECONDS = 600.0
# The node's static facts (GPU models, memory, disk size) are read again this often: a GPU driver
# installed or a disk grown while the server runs shows up without a restart.
INFO_EVERY_SECONDS = 600.0


@dataclass
class LoopState:
    """What one server process's loop carries from round to round."""

    info: dict[str, Any] | None = None
    next_info: float = 0.0
    next_thin: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)


def _step(session: Session, state: LoopState, name: str, work: Callable[[], Any]) -> None:
    try:
        work()
        session.commit()
    except Exception:
        session.rollback()
        state.failures[name] = state.failures.get(name, 0) + 1
        logger.exception("operations step %s failed", name)


def tick(
    settings: Settings,
    database: Database,
    state: LoopState,
    *,
    executor: Executor,
    now: datetime | None = None,
    clock: float | None = None,
) -> None:
    """One round (blocking; the loop runs it in a worker thread). `now`/`clock` are for tests."""
    clock = time.monotonic() if clock is None else clock
    if state.info is None or clock >= state.next_info:
        state.info = node_sampler.static_info(settings.data_dir)
        state.next_info = clock + INFO_EVERY_SECONDS
    # Sampled before a session opens: no connection is held while NVML and psutil answer.
    reading = node_sampler.sample(settings.data_dir)
    taken = now or utcnow()
    with database.session() as session:
        info = state.info

        def local() -> None:
            node = nodes.ensure_local_node(session, settings, info=info)
            nodes.record_sample(session, node, reading, taken, lost_after_s=settings.node_lost_seconds)

        _step(session, state, "local", local)
        if executor.name == "ray":
            _step(session, state, "ray_nodes", lambda: ray_nodes.sync(session, settings))
        # The scheduler's own executor: a hung job the rules stop is signalled like any other stop.
        _step(session, state, "health", lambda: health.evaluate(session, settings, executor=executor))
        _step(session, state, "status", lambda: nodes.refresh_all(session, settings))
        if clock >= state.next_thin:
            state.next_thin = clock + THIN_EVERY_SECONDS
            _step(session, state, "thin", lambda: telemetry.thin(session, settings, utcnow()))


async def run(settings: Settings, database: Database, hub: EventHub, *, executor: Executor) -> None:
    """Run until cancelled (the app's lifespan cancels it on shutdown). The first round runs at once, so
    the local node is listed as soon as the server is up; thinning waits one period (not at start-up)."""
    interval = settings.telemetry_interval_seconds
    state = LoopState(next_thin=time.monotonic() + THIN_EVERY_SECONDS)
    while True:
        started = time.monotonic()
        round_done = asyncio.ensure_future(
            asyncio.to_thread(tick, settings, database, state, executor=executor)
        )
        try:
            await asyncio.shield(round_done)
            hub.publish(OPS_CHANNEL, {"type": "nodes"})
        except asyncio.CancelledError:
            # Shutdown: let the round in its worker thread end first, so the app disposes of the
            # database after the round's session is closed, not under it.
            with contextlib.suppress(Exception):
                await round_done
            raise
        except Exception:
            logger.exception("operations round failed")
        await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))
