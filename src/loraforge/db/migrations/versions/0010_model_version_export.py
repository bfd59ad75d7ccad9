"""Model versions: what an export produced (file format, quantization, main file's sha256, the
verification report).

Revision ID: 0010_model_version_export
Revises: 0009_evaluations
Create Date: 2026-12-07

Written by hand. Four nullable or defaulted columns, added in place (no table rebuild, so the foreign
keys pointing at `model_versions` are never touched). Every existing version is safetensors (the only
format there was). Dropping columns in place needs SQLite 3.35 or newer (Python 3.12's is).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_model_version_export"
down_revision: str | None = "0009_evaluations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "model_versions",
        sa.Column("format", sa.String(length=16), server_default="safetensors", nullable=False),
    )
    op.add_column("model_versions", sa.Column("quantization", sa.String(length=16), nullable=True))
    op.add_column("model_versions", sa.Column("sha256", sa.String(length=64), nullable=True))
    op.add_column("model_versions", sa.Column("verification", sa.JSON(), nullable=True))


def downgrade() -> None:
    for column in ("verification", "sha256", "quantization", "format"):
        op.drop_column("model_versions", column)
