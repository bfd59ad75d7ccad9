"""Alembic: empty → head → base on the configured database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from loraforge.db import models  # noqa: F401
from loraforge.db.base import Base
from loraforge.db.migrate import current_revision, downgrade, head_revision, is_at_head, migrate
from loraforge.db.session import make_engine

TABLES = {"users", "refresh_tokens", "api_keys", "audit_log", "login_attempts"}


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_upgrade_from_empty_to_head_and_back_to_base(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        assert not (set(inspect(engine).get_table_names()) & TABLES)
        migrate(empty_database_url)
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert current_revision(engine) == head_revision()
        assert is_at_head(empty_database_url)

        # The migration builds exactly what the models describe.
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []

        migrate(empty_database_url)  # idempotent
        downgrade(empty_database_url, "base")
        assert not (set(inspect(engine).get_table_names()) & TABLES)
        assert current_revision(engine) is None

        migrate(empty_database_url)  # and up again
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()
