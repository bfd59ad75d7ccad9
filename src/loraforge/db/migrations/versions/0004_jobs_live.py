"""Jobs, part 2: resume/retention/executor columns, templates, notifications, per-user webhook.

Revision ID: 0004_jobs_live
Revises: 0003_jobs
Create Date: 2026-11-22

Written by hand. `batch_alter_table` so SQLite can add the columns too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from loraforge.db.base import UTCDateTime

revision: str = "0004_jobs_live"
down_revision: str | None = "0003_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("external_id", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("devices", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("resume_from", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("files_removed_at", UTCDateTime(), nullable=True))
    # Not batch mode for users: recreating the table on SQLite would lose its expression index
    # (lower(username)). ADD/DROP COLUMN work natively on both backends.
    op.add_column("users", sa.Column("webhook_url", sa.Text(), nullable=True))

    op.create_table(
        "job_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_job_templates_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_templates")),
        sa.UniqueConstraint("owner_id", "name", name=op.f("uq_job_templates_owner_id")),
    )
    op.create_index(op.f("ix_job_templates_owner_id"), "job_templates", ["owner_id"])

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("read_at", UTCDateTime(), nullable=True),
        sa.Column("webhook_status", sa.String(length=16), nullable=True),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("webhook_next_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_notifications_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index("ix_notifications_user_id_id", "notifications", ["user_id", "id"])
    op.create_index("ix_notifications_webhook", "notifications", ["webhook_status", "webhook_next_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_webhook", table_name="notifications")
    op.drop_index("ix_notifications_user_id_id", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_job_templates_owner_id"), table_name="job_templates")
    op.drop_table("job_templates")
    op.execute("ALTER TABLE users DROP COLUMN webhook_url")
    with op.batch_alter_table("jobs") as batch:
        for column in ("files_removed_at", "resume_from", "attempt", "devices", "external_id", "pinned"):
            batch.drop_column(column)
