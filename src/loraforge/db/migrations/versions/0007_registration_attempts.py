"""Registration attempts per client address (the registration rate limit survives restarts and replicas).

Revision ID: 0007_registration_attempts
Revises: 0006_models_chat
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from loraforge.db.base import UTCDateTime

revision: str = "0007_registration_attempts"
down_revision: str | None = "0006_models_chat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registration_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_attempts")),
    )
    op.create_index("ix_registration_attempts_ip_ts", "registration_attempts", ["ip", "ts"])


def downgrade() -> None:
    op.drop_index("ix_registration_attempts_ip_ts", table_name="registration_attempts")
    op.drop_table("registration_attempts")
