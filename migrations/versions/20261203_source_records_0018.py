"""source records: each trial registry record imported, as received (compressed), with its
registry version and SHA-256, so that provenance pointers resolve and newer versions update
their study with history.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "source_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("study_id", sa.Uuid(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"], ["studies.id"], name=op.f("fk_source_records_study_id_studies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_records")),
        sa.UniqueConstraint("study_id", "sha256", name=op.f("uq_source_records_study_id_sha256")),
    )
    op.create_index(op.f("ix_source_records_study_id"), "source_records", ["study_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_source_records_study_id"), table_name="source_records")
    op.drop_table("source_records")
