"""study lock: studies.lock (reason, locked_at, locked_by) while an admin has locked the study;
every write to it and its records is refused meanwhile (service.locks).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("lock", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("lock")
