"""audit study version index: audit_records (study_id, seq) replaces the index on study_id
alone, so that a study's last audit record (the version its analyses are cached on,
service.caching.versions) is one index lookup.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 23:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_audit_records_study_id_seq"), "audit_records", ["study_id", "seq"], unique=False)
    op.drop_index(op.f("ix_audit_records_study_id"), table_name="audit_records")


def downgrade() -> None:
    op.create_index(op.f("ix_audit_records_study_id"), "audit_records", ["study_id"], unique=False)
    op.drop_index(op.f("ix_audit_records_study_id_seq"), table_name="audit_records")
