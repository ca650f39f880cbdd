"""lookalike keys: agents.name_key and patients.subject_key, unique, so that two agents (or two
subject codes of one study) that a reader cannot tell apart are refused (service.common.lookalikes).

Existing rows get their key computed here. Rows that already collide keep their names; each
later one's key is suffixed with its id, so that today's data stays valid and only new writes
are held to the rule.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.common.lookalikes import skeleton

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _backfill(table: str, source: str, key: str, scope: str | None) -> None:
    bind = op.get_bind()
    columns = f"id, {source}" + (f", {scope}" if scope else "")
    seen: set[tuple[object, str]] = set()
    updates = []
    for row in bind.execute(sa.text(f"SELECT {columns} FROM {table} ORDER BY id")).all():  # noqa: S608
        value = skeleton(row[1].lower() if key == "name_key" else row[1])
        group = row[2] if scope else None
        if (group, value) in seen:
            value = f"{value}#{row[0]}"
        seen.add((group, value))
        updates.append({"id": row[0], "key": value})
    if updates:
        bind.execute(sa.text(f"UPDATE {table} SET {key} = :key WHERE id = :id"), updates)  # noqa: S608


def upgrade() -> None:
    op.add_column("agents", sa.Column("name_key", sa.String(length=400), nullable=True))
    op.add_column("patients", sa.Column("subject_key", sa.String(length=400), nullable=True))
    _backfill("agents", "name", "name_key", None)
    _backfill("patients", "subject_code", "subject_key", "study_id")
    op.create_index("uq_agents_name_key", "agents", ["name_key"], unique=True)
    op.create_index("uq_patients_study_id_subject_key", "patients", ["study_id", "subject_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_patients_study_id_subject_key", table_name="patients")
    op.drop_index("uq_agents_name_key", table_name="agents")
    op.execute("ALTER TABLE patients DROP COLUMN subject_key")
    op.execute("ALTER TABLE agents DROP COLUMN name_key")
