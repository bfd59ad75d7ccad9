"""STUB (nodes & telemetry helper replaces this): the operations loop of the server's lifespan."""

from __future__ import annotations

import asyncio

from loraforge.db.session import Database
from loraforge.services.platform.event_hub import EventHub
from loraforge.settings import Settings


async def run(settings: Settings, database: Database, hub: EventHub, *, executor_name: str) -> None:
    while True:
        await asyncio.sleep(3600)
