"""Authenticate a WebSocket the way `api/deps.py` authenticates an HTTP request.

Browsers cannot set headers on a WebSocket, so the credential (an access token or an `lf_` API key)
travels as the subprotocol pair `Sec-WebSocket-Protocol: loraforge.bearer, <token>`; the server
answers with the subprotocol `loraforge.bearer` only (the token is never echoed). Non-browser clients
may send `Authorization: Bearer <token>` instead. A query-string token is refused on purpose: URLs end
up in access logs and proxies.

The handshake is always accepted first and failures are reported as close codes afterwards: a
browser sees a refused handshake only as code 1006, which a client cannot tell from a network error.

Close codes (4000 + the HTTP status they mirror):
  4400 bad request parameters, 4401 no or invalid credential (also later, once the session behind it
  is revoked: `CredentialCheck`), 4403 not allowed, 4404 no such resource (or not visible to this user),
  4429 the user already holds `ws_max_per_user` open WebSockets (`api/ws_limits.py`).

Usage in a handler::

    principal = await accept_authenticated(websocket)
    if principal is None:
        return  # already closed with 4401
    ... principal.user (detached, attributes loaded) ...
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import WebSocket
from starlette.concurrency import run_in_threadpool

from loraforge.db.models import User
from loraforge.db.session import Database
from loraforge.errors import AuthenticationFailed
from loraforge.services.accounts import auth
from loraforge.settings import Settings

SUBPROTOCOL = "loraforge.bearer"

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


@dataclass(frozen=True)
class WsPrincipal:
    """The authenticated caller of a WebSocket. `user` is detached from any session (read-only use)."""

    user: User
    api_key_id: int | None = None


def offered_subprotocols(websocket: WebSocket) -> list[str]:
    """The client's `Sec-WebSocket-Protocol` values, in order."""
    raw = websocket.headers.get("sec-websocket-protocol", "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def credential_of(websocket: WebSocket) -> str | None:
    """The bearer credential from the subprotocol pair, else from an `Authorization: Bearer` header."""
    offered = offered_subprotocols(websocket)
    if SUBPROTOCOL in offered:
        index = offered.index(SUBPROTOCOL)
        if index + 1 < len(offered):
            return offered[index + 1]
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _authenticate(database: Database, settings: Settings, credential: str) -> WsPrincipal:
    # A short session of its own: a WebSocket lives for hours and must never hold one open.
    with database.session() as session:
        principal = auth.authenticate_bearer(session, settings=settings, credential=credential)
        session.expunge(principal.user)  # expire_on_commit=False: attributes stay loaded
        api_key_id = principal.api_key.id if principal.api_key is not None else None
        return WsPrincipal(user=principal.user, api_key_id=api_key_id)


async def authenticate_websocket(websocket: WebSocket) -> WsPrincipal | None:
    """The caller of a not yet accepted WebSocket, or None when the credential is missing or invalid."""
    credential = credential_of(websocket)
    if credential is None:
        return None
    database: Database = websocket.app.state.db
    settings: Settings = websocket.app.state.settings
    try:
        return await run_in_threadpool(_authenticate, database, settings, credential)
    except AuthenticationFailed:
        return None


async def accept_authenticated(websocket: WebSocket) -> WsPrincipal | None:
    """Accept the handshake and authenticate; on failure close with 4401 and return None.

    Replies with the `loraforge.bearer` subprotocol when the client offered it (a browser drops a
    connection whose reply does not name one of the offered subprotocols).
    """
    principal = await authenticate_websocket(websocket)
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered_subprotocols(websocket) else None
    await websocket.accept(subprotocol=subprotocol)
    if principal is None:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="authentication required")
        return None
    return principal


CREDENTIAL_RECHECK_SECONDS = 5.0


class CredentialCheck:
    """Re-authenticates a long-lived socket's credential every `CREDENTIAL_RECHECK_SECONDS`, so a logout,
    password change or revoked API key ends streams that are already open, not only new handshakes."""

    def __init__(self, websocket: WebSocket, user_id: int) -> None:
        self.websocket = websocket
        self.user_id = user_id
        self.next_check = time.monotonic() + CREDENTIAL_RECHECK_SECONDS

    async def still_valid(self) -> bool:
        """False (after closing the socket with 4401) once the credential no longer authenticates."""
        if time.monotonic() < self.next_check:
            return True
        self.next_check = time.monotonic() + CREDENTIAL_RECHECK_SECONDS
        principal = await authenticate_websocket(self.websocket)
        if principal is not None and principal.user.id == self.user_id:
            return True
        await self.websocket.close(code=CLOSE_UNAUTHORIZED, reason="credential revoked")
        return False
