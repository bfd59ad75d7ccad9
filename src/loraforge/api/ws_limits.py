"""How many WebSockets one user may hold open at once (`ws_max_per_user`), across every `/ws/...` route.

Every open socket costs a task, a hub subscription and a database poll every second or so; without a
cap one account can open thousands and slow the server down for everyone. The count is kept per
server process (the app's `ws_slots`): behind several processes a user may hold the cap in each.

The handshake is accepted first (like every other refusal on these routes, see `api/ws_auth.py`), then
a socket over the cap is closed with 4429, "too many", mirroring HTTP 429.
"""

from __future__ import annotations

from collections import Counter
from types import TracebackType

from fastapi import WebSocket

CLOSE_TOO_MANY = 4429


class WebSocketSlots:
    """Open sockets per user id. Used from the event loop only, so no lock is needed."""

    def __init__(self, max_per_user: int) -> None:
        self.max_per_user = max_per_user
        self._open: Counter[int] = Counter()

    def open_count(self, user_id: int) -> int:
        return self._open[user_id]

    def try_claim(self, user_id: int) -> bool:
        if self._open[user_id] >= self.max_per_user:
            return False
        self._open[user_id] += 1
        return True

    def release(self, user_id: int) -> None:
        self._open[user_id] -= 1
        if self._open[user_id] <= 0:
            del self._open[user_id]


class Slot:
    """One claimed place; `with slot:` gives it back when the socket's handler ends, however it ends."""

    def __init__(self, slots: WebSocketSlots, user_id: int) -> None:
        self._slots = slots
        self._user_id = user_id

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._slots.release(self._user_id)


async def claim_slot(websocket: WebSocket, user_id: int) -> Slot | None:
    """A place for this accepted socket, or None after closing it with 4429 (the user is at the cap)."""
    slots: WebSocketSlots = websocket.app.state.ws_slots
    if not slots.try_claim(user_id):
        reason = f"too many open WebSockets (at most {slots.max_per_user} per user)"
        await websocket.close(code=CLOSE_TOO_MANY, reason=reason)
        return None
    return Slot(slots, user_id)
