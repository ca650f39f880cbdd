"""audit records name their study and the grant that allowed the write (both nullable: older
records, global roles, token management). The append-only triggers stay as they are.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_records", sa.Column("study_id", sa.Uuid(), nullable=True))
    op.add_column("audit_records", sa.Column("access_grant", sa.JSON(), nullable=True))
    op.create_index(op.f("ix_audit_records_study_id"), "audit_records", ["study_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_records_study_id"), table_name="audit_records")
    op.execute("ALTER TABLE audit_records DROP COLUMN access_grant")
    op.execute("ALTER TABLE audit_records DROP COLUMN study_id")
