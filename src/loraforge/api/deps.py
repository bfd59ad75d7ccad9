"""Dependencies as `Annotated` aliases, so route signatures read like sentences."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from loraforge.api import proxies
from loraforge.db.models import Role, User
from loraforge.db.session import Database
from loraforge.errors import AuthenticationFailed, Forbidden
from loraforge.services.accounts import auth
from loraforge.services.jobs.scheduler import Scheduler
from loraforge.services.platform import ownership
from loraforge.settings import Settings


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


async def _session(database: Annotated[Database, Depends(_database)]) -> AsyncIterator[Session]:
    # An async generator on purpose: FastAPI runs a sync generator's cleanup in the worker-thread pool,
    # so under load finished requests kept their connection while queued for a thread, and the pool
    # ran dry (30 s timeouts). Closing here, on the event loop, returns the connection at once.
    session = database.session_factory()
    try:
        yield session
    finally:
        session.close()


def _client_ip(request: Request, settings: Annotated[Settings, Depends(_settings)]) -> str:
    # X-Forwarded-For counts only from a peer in LORAFORGE_TRUSTED_PROXIES (empty: from nobody), the
    # rule `loraforge serve` also gives uvicorn; a header from anyone else is ignored.
    peer = request.client.host if request.client else None
    trusted = proxies.parse(settings.trusted_proxies)
    return proxies.client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_matches_host(origin: str, host: str) -> bool:
    """Whether `Origin` names this server: the host and port the request was sent to (`Host`).

    The scheme is not compared: behind a TLS proxy the server itself sees plain HTTP.
    """
    try:
        parts = urlsplit(origin)
        origin_host, origin_port = parts.hostname, parts.port
        served = urlsplit(f"//{host}")
        served_host, served_port = served.hostname, served.port
    except ValueError:
        return False
    if parts.scheme not in _DEFAULT_PORTS or not origin_host or not served_host:
        return False
    default = _DEFAULT_PORTS[parts.scheme]
    return origin_host == served_host and (origin_port or default) == (served_port or default)


def _same_origin(request: Request) -> None:
    # The refresh cookie is SameSite=Strict, which browsers enforce per site, not per origin, and only
    # browsers enforce it: a request whose Origin is another site's is refused outright.
    origin = request.headers.get("origin")
    if origin is not None and not _origin_matches_host(origin, request.headers.get("host", "")):
        raise Forbidden("cross-origin requests may not use the session cookie", code="cross_origin")


def _user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


SettingsDep = Annotated[Settings, Depends(_settings)]
DatabaseDep = Annotated[Database, Depends(_database)]
SessionDep = Annotated[Session, Depends(_session)]
ClientIP = Annotated[str, Depends(_client_ip)]
UserAgent = Annotated[str | None, Depends(_user_agent)]
# For routes authenticated by the refresh cookie alone: refuse a foreign `Origin` (403 cross_origin).
SameOrigin = Depends(_same_origin)

# auto_error=False: a missing header must produce our error shape, not FastAPI's default body.
_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from /api/auth/login, or a personal API key (`lf_...`).",
)


def _principal(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> auth.Principal:
    if credentials is None or not credentials.credentials:
        raise AuthenticationFailed("authentication required", code="not_authenticated")
    principal = auth.authenticate_bearer(session, settings=settings, credential=credentials.credentials)
    # End the read transaction: the connection goes back to the pool while this request waits for a
    # worker thread for its endpoint (otherwise 100 waiting requests hold 100 connections and the pool
    # runs dry). expire_on_commit=False keeps the user loaded.
    session.commit()
    return principal


def _current_user(principal: Annotated[auth.Principal, Depends(_principal)]) -> User:
    return principal.user


def _admin_user(user: Annotated[User, Depends(_current_user)]) -> User:
    ownership.ensure_role(user, {Role.admin})
    return user


CurrentPrincipal = Annotated[auth.Principal, Depends(_principal)]
CurrentUser = Annotated[User, Depends(_current_user)]
AdminUser = Annotated[User, Depends(_admin_user)]


def _scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.scheduler
    return scheduler


SchedulerDep = Annotated[Scheduler, Depends(_scheduler)]
