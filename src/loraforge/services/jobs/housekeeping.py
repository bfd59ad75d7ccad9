"""The server's housekeeping loop (a lifespan task next to the scheduler): webhook delivery about
every second and the retention sweep every `retention_interval_seconds`.

Blocking work (database, HTTP POSTs, deleting files) runs in a worker thread so the event loop stays
free for requests and WebSockets. One failing round is logged and the loop goes on: housekeeping
must never take the server down. Also attaches the app's EventHub to `services.platform.notifications` so
new notifications wake their owners' WebSockets at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from loraforge.db.session import Database
from loraforge.services.jobs import retention
from loraforge.services.platform import notifications, webhooks
from loraforge.services.platform.event_hub import EventHub
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.background")

WEBHOOK_POLL_SECONDS = 1.0
FIRST_SWEEP_DELAY_SECONDS = 60.0


def _sweep(database: Database, settings: Settings) -> int:
    with database.session() as session:
        return len(retention.sweep(session, settings=settings))


async def run(settings: Settings, database: Database, hub: EventHub) -> None:
    """Run until cancelled (the app's lifespan cancels it on shutdown)."""
    notifications.attach_hub(hub)
    poll = min(WEBHOOK_POLL_SECONDS, settings.webhook_backoff_seconds)
    # First sweep a minute after start-up (or one interval, if shorter): not while the server is busy
    # starting, yet soon after a restart that followed a long downtime.
    next_sweep = time.monotonic() + min(FIRST_SWEEP_DELAY_SECONDS, settings.retention_interval_seconds)
    try:
        while True:
            try:
                await asyncio.to_thread(webhooks.deliver_due, database, settings)
            except Exception:
                logger.exception("webhook delivery round failed")
            if settings.retention_days > 0 and time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + settings.retention_interval_seconds
                try:
                    removed = await asyncio.to_thread(_sweep, database, settings)
                    if removed:
                        logger.info("retention sweep removed the files of %d job(s)", removed)
                except Exception:
                    logger.exception("retention sweep failed")
            await asyncio.sleep(poll)
    finally:
        notifications.detach_hub(hub)
