"""Dependencies as `Annotated` aliases, so route signatures read like sentences."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from loraforge.db.models import Role, User
from loraforge.db.session import Database
from loraforge.errors import AuthenticationFailed
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


def _client_ip(request: Request) -> str:
    # uvicorn rewrites request.client from X-Forwarded-For only for trusted proxies
    # (--forwarded-allow-ips), so this cannot be spoofed by a header from the internet.
    return request.client.host if request.client else "unknown"


def _user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


SettingsDep = Annotated[Settings, Depends(_settings)]
DatabaseDep = Annotated[Database, Depends(_database)]
SessionDep = Annotated[Session, Depends(_session)]
ClientIP = Annotated[str, Depends(_client_ip)]
UserAgent = Annotated[str | None, Depends(_user_agent)]

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
