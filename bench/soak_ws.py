"""One WebSocket follower of the soak (`soak.py`): a job's stream from seq 0 to its final status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

FINAL = {"succeeded", "failed", "cancelled"}
QUIET_AFTER_FINAL_S = 2.0  # anything sent after the final status arrives within this
MAX_RECONNECTS = 5


@dataclass
class Follow:
    client: int
    job_id: int
    seqs: list[int]
    messages: int
    reconnects: int
    closes: list[str]


async def follow(url: str, client: int, job_id: int, token: Callable[[], str]) -> Follow:
    """Every event of the job, in the order received. A dropped connection resumes with `after` =
    the last seq received (the protocol's promise) and is counted."""
    seqs: list[int] = []
    closes: list[str] = []
    messages = [0]
    while len(closes) <= MAX_RECONNECTS:
        protocols = [Subprotocol("loraforge.bearer"), Subprotocol(token())]
        try:
            async with connect(
                f"{url}?after={seqs[-1] if seqs else 0}",
                subprotocols=protocols,
                max_size=None,
                open_timeout=120,
            ) as ws:
                await _read(ws, seqs, messages)
                break
        except (ConnectionClosed, OSError, TimeoutError) as exc:
            closes.append(repr(exc)[:200])
    return Follow(client, job_id, seqs, messages[0], len(closes), closes)


async def _read(ws: Any, seqs: list[int], messages: list[int]) -> None:
    snapshot = json.loads(await ws.recv())
    if snapshot.get("type") != "snapshot":
        raise OSError(f"the first message is not a snapshot: {str(snapshot)[:100]}")
    final = snapshot["job"]["status"] in FINAL
    while True:
        try:
            raw = await asyncio.wait_for(ws.recv(), timeout=QUIET_AFTER_FINAL_S if final else 300)
        except TimeoutError:
            if final:
                return
            raise
        messages[0] += 1
        message = json.loads(raw)
        if "seq" in message:
            seqs.append(int(message["seq"]))
        elif message.get("type") == "job" and message["job"]["status"] in FINAL:
            final = True


def difference(got: list[int], expected: list[int]) -> str:
    """What a follower's events lack or have too much of, compared with the stored ones."""
    duplicates = len(got) - len(set(got))
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    order = "in order" if got == sorted(got) else "OUT OF ORDER"
    return (
        f"{len(got)} of {len(expected)} events, {duplicates} duplicates, missing {missing[:10]}, "
        f"extra {extra[:10]}, {order}"
    )
