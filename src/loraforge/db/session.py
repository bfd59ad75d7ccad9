"""Engine and session factory for SQLite (zero configuration) and PostgreSQL (teams)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

# Sync routes run in AnyIO's thread pool (40 threads) and each holds a session until its response is
# sent; a smaller pool than that deadlocks under load (requests wait 30 s for a connection held by a
# request that waits for a thread). Connections are opened lazily, so idle servers hold few.
_POOL_SIZE = 10
_MAX_OVERFLOW = 40
# The database file and the files SQLite keeps beside it (WAL mode, or a rollback journal).
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")

logger = logging.getLogger("loraforge.db")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed while one writer commits (the server and CLI share the file);
    # SQLite ignores foreign keys unless asked, and ON DELETE CASCADE/SET NULL rely on them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for other backends, `:memory:` and `file:` URIs."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or parsed.query.get("uri"):
        return None
    return Path(database)


def make_private(path: Path) -> None:
    """Owner-only database files. SQLite creates the database with the umask's mode (usually 0644:
    anyone on the machine could read password hashes and every user's data) and gives its -wal and
    -shm files the database file's mode; so the file is created 0600 before SQLite opens it, and
    group/other bits are taken from files that an older version left readable."""
    if path.parent.is_dir() and not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for companion in _SQLITE_COMPANIONS:
        target = Path(f"{path}{companion}")
        try:
            mode = target.stat().st_mode
            if mode & 0o077:
                target.chmod(mode & 0o700)
        except FileNotFoundError:
            continue
        except OSError as exc:  # e.g. a file owned by another account: say so, still start
            logger.warning("could not make %s owner-only: %s", target, exc)


def ensure_sqlite_directory(url: str) -> None:
    """Create the folder of a SQLite file (done when migrating, not on import or engine creation)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite connections get their pragmas."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False}, pool_size=_POOL_SIZE, max_overflow=_MAX_OVERFLOW
        )
        file = _sqlite_file(url)
        if file is not None:
            # Before every new connection: SQLite creates the file on the first one, and a deleted
            # database is created again by the next.
            event.listen(engine, "do_connect", lambda *_args: make_private(file))
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=_POOL_SIZE, max_overflow=_MAX_OVERFLOW)


class Database:
    """One engine plus its session factory; the app keeps one in `app.state.db`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.session_factory() as session:
            yield session

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
