"""Shared fixtures: a real database for every test that asks for one.

`LORAFORGE_TEST_DATABASE_URL` selects PostgreSQL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test);
otherwise each test gets its own SQLite file. On PostgreSQL the session migrates one private schema
once and empties its tables after each test; `empty_database_url` gives a fresh schema of its own.
`--database-tests-only` deselects the tests that use neither fixture (see scripts/test.sh).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

TEST_DATABASE_ENV = "LORAFORGE_TEST_DATABASE_URL"
DATABASE_FIXTURES = ("database_url", "empty_database_url")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        default=False,
        help="Deselect tests that never ask for a database (database_url / empty_database_url): on a second "
        "backend they would only repeat the first run exactly. Used by scripts/test.sh's PostgreSQL phase.",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--database-tests-only"):
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        uses_database = any(name in getattr(item, "fixturenames", ()) for name in DATABASE_FIXTURES)
        (keep if uses_database else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _postgres_base_url() -> str | None:
    url = os.environ.get(TEST_DATABASE_ENV, "").strip()
    return url or None


def _with_search_path(base_url: str, schema: str) -> str:
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


class PostgresSchemas:
    """Creates and drops throwaway schemas on the test server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.engine = create_engine(base_url, isolation_level="AUTOCOMMIT")

    def create(self) -> tuple[str, str]:
        schema = f"lf_test_{uuid.uuid4().hex[:12]}"
        with self.engine.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        return schema, _with_search_path(self.base_url, schema)

    def drop(self, schema: str) -> None:
        with self.engine.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))

    def empty_tables(self, schema: str) -> None:
        """Delete every row and restart every sequence: the state TRUNCATE ... RESTART IDENTITY leaves.

        DELETE rather than TRUNCATE: TRUNCATE gives each of the ~20 tables a new file and syncs it,
        about half a second per test on a server with fsync on, for tables holding a handful of rows.
        Children go before their parents (reverse dependency order), in one transaction.
        """
        from loraforge.db import models  # noqa: F401  (registers the tables)
        from loraforge.db.base import Base

        with self.engine.connect() as connection:
            connection.execution_options(
                isolation_level="READ COMMITTED", schema_translate_map={None: schema}
            )
            with connection.begin():
                for table in reversed(Base.metadata.sorted_tables):
                    connection.execute(table.delete())
                connection.execute(
                    text(
                        "SELECT setval(s.seqrelid, s.seqstart, false) FROM pg_sequence s"
                        " JOIN pg_class c ON c.oid = s.seqrelid"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema"
                    ),
                    {"schema": schema},
                )


@pytest.fixture(scope="session")
def database_backend() -> str:
    return "postgresql" if _postgres_base_url() else "sqlite"


@pytest.fixture(scope="session")
def _postgres() -> Iterator[PostgresSchemas | None]:
    base_url = _postgres_base_url()
    if base_url is None:
        yield None
        return
    schemas = PostgresSchemas(base_url)
    yield schemas
    schemas.engine.dispose()


@pytest.fixture(scope="session")
def _migrated_template(
    tmp_path_factory: pytest.TempPathFactory, _postgres: PostgresSchemas | None
) -> Iterator[str]:
    """SQLite: a migrated database file to copy. PostgreSQL: the session's migrated schema name."""
    from loraforge.db.migrate import migrate

    if _postgres is None:
        path = tmp_path_factory.mktemp("db-template") / "template.db"
        migrate(f"sqlite:///{path}")
        yield str(path)
        return
    schema, url = _postgres.create()
    migrate(url)
    yield schema
    _postgres.drop(schema)


@pytest.fixture
def database_url(tmp_path: Path, _postgres: PostgresSchemas | None, _migrated_template: str) -> Iterator[str]:
    """A migrated, empty database for one test."""
    if _postgres is None:
        path = tmp_path / "loraforge.db"
        shutil.copyfile(_migrated_template, path)
        yield f"sqlite:///{path}"
        return
    assert _postgres.base_url is not None
    yield _with_search_path(_postgres.base_url, _migrated_template)
    _postgres.empty_tables(_migrated_template)


@pytest.fixture
def empty_database_url(tmp_path: Path, _postgres: PostgresSchemas | None) -> Iterator[str]:
    """A database with no tables at all (for migration tests)."""
    if _postgres is None:
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    schema, url = _postgres.create()
    yield url
    _postgres.drop(schema)
