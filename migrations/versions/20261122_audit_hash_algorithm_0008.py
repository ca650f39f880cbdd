"""audit hash algorithm

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 18:51:59.347754
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (not a batch rebuild): SQLite keeps the table and its append-only
    # triggers; existing records are plain SHA-256.
    op.add_column(
        "audit_records",
        sa.Column(
            "hash_alg", sqlmodel.sql.sqltypes.AutoString(length=20), server_default="sha256", nullable=False
        ),
    )


def downgrade() -> None:
    op.execute("ALTER TABLE audit_records DROP COLUMN hash_alg")
