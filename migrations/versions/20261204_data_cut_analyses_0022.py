"""data cut analyses: each analysis answered on a data cut, kept for its release package.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_cut_analyses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("cut_id", sa.Uuid(), nullable=False),
        sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("operation", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("path", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["cut_id"], ["data_cuts.id"], name=op.f("fk_data_cut_analyses_cut_id_data_cuts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_cut_analyses")),
        sa.UniqueConstraint("cut_id", "request_key", name=op.f("uq_data_cut_analyses_cut_id_request_key")),
    )
    op.create_index(op.f("ix_data_cut_analyses_cut_id"), "data_cut_analyses", ["cut_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_data_cut_analyses_cut_id"), table_name="data_cut_analyses")
    op.drop_table("data_cut_analyses")
