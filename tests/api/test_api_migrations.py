"""Alembic: empty → head → base on the configured database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from job_helpers import insert_job
from sqlalchemy import func, inspect, select, update
from sqlalchemy.exc import IntegrityError

from loraforge.db.base import Base
from loraforge.db.migrate import current_revision, downgrade, head_revision, is_at_head, migrate
from loraforge.db.models import Job, JobEvent, Notification
from loraforge.db.session import Database, make_engine

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


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_stopped_status_migration_keeps_jobs_and_what_points_at_them(empty_database_url):
    """0008 rebuilds `jobs` on SQLite: the rows that reference a job (events, notifications) survive it,
    `stopped` is accepted after it and refused before it, and a downgrade turns stopped into cancelled."""
    migrate(empty_database_url, "0007_registration_attempts")
    database = Database(empty_database_url)
    try:
        job_id = insert_job(database, status="cancelled")
        with database.session() as session:
            owner_id = session.scalar(select(Job.owner_id))
            session.add(JobEvent(job_id=job_id, seq=1, type="log", ts=1.0, data={"message": "hi"}))
            session.add(Notification(user_id=owner_id, job_id=job_id, kind="job.cancelled", title="t"))
            session.commit()
        with database.session() as session, pytest.raises(IntegrityError):
            session.execute(update(Job).values(status="stopped"))
            session.commit()
        database.dispose()

        migrate(empty_database_url)
        with database.session() as session:
            session.execute(update(Job).where(Job.id == job_id).values(status="stopped"))
            session.commit()
            assert session.scalar(select(func.count()).select_from(JobEvent)) == 1
            assert session.scalar(select(Notification.job_id)) == job_id
            with pytest.raises(IntegrityError):
                session.execute(update(Job).values(status="paused"))
                session.commit()
        database.dispose()

        downgrade(empty_database_url, "0007_registration_attempts")
        with database.session() as session:
            assert session.scalar(select(Job.status)) == "cancelled"
            assert session.scalar(select(func.count()).select_from(JobEvent)) == 1
            assert session.scalar(select(Notification.job_id)) == job_id
    finally:
        database.dispose()
