"""study official title and eligibility (ClinicalTrials.gov records)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch rebuild): nullable, nothing to backfill.
    op.add_column(
        "studies", sa.Column("official_title", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True)
    )
    op.add_column("studies", sa.Column("eligibility", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE studies DROP COLUMN eligibility")
    op.execute("ALTER TABLE studies DROP COLUMN official_title")
