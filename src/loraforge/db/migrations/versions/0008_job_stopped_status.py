"""Jobs: the `stopped` status (a stop the user asked for has finished; resumable).

Revision ID: 0008_job_stopped_status
Revises: 0007_registration_attempts
Create Date: 2026-12-20

Written by hand. Only the CHECK constraint on `jobs.status` changes. PostgreSQL drops and adds it in
place; SQLite cannot alter a constraint, so batch mode rebuilds the table (copy, drop, rename). That
rebuild drops `jobs`, which with foreign keys on would run the ON DELETE actions of every table that
points at it (job events and notifications deleted, model versions unlinked): SQLite therefore runs it
with foreign keys off, which only takes effect outside a transaction, and checks them afterwards.
Downgrading turns stopped jobs into cancelled ones (what they were called before).
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from alembic import op

revision: str = "0008_job_stopped_status"
down_revision: str | None = "0007_registration_attempts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies: a migration describes one step of the schema, never the model as it is today.
BEFORE = ("draft", "queued", "starting", "running", "stopping", "succeeded", "failed", "cancelled")
AFTER = (*BEFORE, "stopped")


@contextmanager
def _sqlite_foreign_keys_off() -> Iterator[None]:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        with op.get_context().autocommit_block():
            op.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        if sqlite:
            with op.get_context().autocommit_block():
                op.execute("PRAGMA foreign_keys=ON")
    if sqlite:
        broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"foreign keys broken by rebuilding jobs: {broken[:5]}")


def _replace_status_check(values: tuple[str, ...]) -> None:
    with _sqlite_foreign_keys_off(), op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("ck_jobs_status_valid"), type_="check")
        batch.create_check_constraint("status_valid", f"status IN {values!r}")


def upgrade() -> None:
    _replace_status_check(AFTER)


def downgrade() -> None:
    op.execute("UPDATE jobs SET status = 'cancelled' WHERE status = 'stopped'")
    _replace_status_check(BEFORE)
