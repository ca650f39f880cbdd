"""token grants: a token holds a global role, as before, or (role null) a list of grants on
studies and sites (service.access.grants). Every existing token keeps its role.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("grants", sa.JSON(), nullable=True))
        batch.alter_column("role", existing_type=sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True)


def downgrade() -> None:
    # A token with grants has no role to fall back to: it cannot outlive the downgrade.
    op.execute("DELETE FROM api_tokens WHERE role IS NULL")
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("role", existing_type=sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False)
        batch.drop_column("grants")
