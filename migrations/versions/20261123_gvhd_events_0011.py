"""gvhd events: the event type and its kind, grade, severity and systemic therapy

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 02:30:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TYPES = "'relapse', 'progression', 'death', 'hsct', 'last_follow_up'"
NEW_TYPES = OLD_TYPES + ", 'gvhd'"


def _revision_0009() -> ModuleType:
    path = next(Path(__file__).parent.glob("*_0009.py"))
    spec = importlib.util.spec_from_file_location("revision_0009", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rebuilding_outcomes_on_sqlite() -> bool:
    """SQLite rebuilds the table to change a CHECK: its last-recorded-day triggers (revision
    0009), which name `outcomes`, are dropped first and created again afterwards."""
    if op.get_bind().dialect.name != "sqlite":
        return False
    for table in _revision_0009().DAY_COLUMNS:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_last_day_{event}")
    return True


def upgrade() -> None:
    sqlite = _rebuilding_outcomes_on_sqlite()
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("gvhd_kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True)
        )
        batch_op.add_column(sa.Column("gvhd_grade", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("gvhd_severity", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True)
        )
        batch_op.add_column(sa.Column("gvhd_systemic_therapy", sa.Boolean(), nullable=True))
        batch_op.drop_constraint(batch_op.f("ck_outcomes_event_type"), type_="check")
        batch_op.create_check_constraint("event_type", f"event_type IS NULL OR event_type IN ({NEW_TYPES})")
        batch_op.create_check_constraint(
            "gvhd_kind", "gvhd_kind IS NULL OR gvhd_kind IN ('acute', 'chronic')"
        )
        batch_op.create_check_constraint(
            "gvhd_severity", "gvhd_severity IS NULL OR gvhd_severity IN ('mild', 'moderate', 'severe')"
        )
        batch_op.create_check_constraint(
            "gvhd_grade_range", "gvhd_grade IS NULL OR gvhd_grade BETWEEN 1 AND 4"
        )
        batch_op.create_check_constraint("gvhd_fields_on_gvhd", "event_type = 'gvhd' OR gvhd_kind IS NULL")
    if sqlite:
        _revision_0009()._sqlite_triggers()


def downgrade() -> None:
    # The earlier schema cannot hold a GVHD event.
    op.execute("DELETE FROM outcomes WHERE event_type = 'gvhd'")
    sqlite = _rebuilding_outcomes_on_sqlite()
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_outcomes_gvhd_fields_on_gvhd"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_outcomes_gvhd_grade_range"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_outcomes_gvhd_severity"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_outcomes_gvhd_kind"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_outcomes_event_type"), type_="check")
        batch_op.create_check_constraint("event_type", f"event_type IS NULL OR event_type IN ({OLD_TYPES})")
        batch_op.drop_column("gvhd_systemic_therapy")
        batch_op.drop_column("gvhd_severity")
        batch_op.drop_column("gvhd_grade")
        batch_op.drop_column("gvhd_kind")
    if sqlite:
        _revision_0009()._sqlite_triggers()
