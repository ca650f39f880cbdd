# ruff: noqa: S608 - statements built from fixed table and column names, no input
"""each patient's last recorded study day, kept by triggers; indexes for the list filters

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 21:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Where a patient's records carry study days.
DAY_COLUMNS = {
    "outcomes": ("study_day",),
    "adverse_events": ("onset_day", "resolution_day"),
    "treatments": ("start_day", "end_day"),
}
INDEXES = {
    "studies": [("design",), ("overall_status",)],
    "patients": [
        ("study_id", "diagnosis"),
        ("study_id", "disease_status"),
        ("study_id", "sex"),
        ("study_id", "age_years"),
    ],
    "treatments": [("phase",)],
    "adverse_events": [("grade",), ("grading_system",)],
    "outcomes": [("event_type", "patient_id", "study_day"), ("category",), ("mrd_status",), ("study_day",)],
}


def _latest(patient: str) -> str:
    """SQL: the latest study day among the patient's records (null when none has one)."""
    parts = [
        f"SELECT max({column}) AS day FROM {table} WHERE patient_id = {patient}"
        for table, columns in DAY_COLUMNS.items()
        for column in columns
    ]
    return f"(SELECT max(day) FROM ({' UNION ALL '.join(parts)}) AS days)"


def _index_name(table: str, columns: tuple[str, ...]) -> str:
    return f"ix_{table}_{'_'.join(columns)}"


def upgrade() -> None:
    op.add_column("patients", sa.Column("last_recorded_day", sa.Integer(), nullable=True))
    for table, indexes in INDEXES.items():
        for columns in indexes:
            op.create_index(_index_name(table, columns), table, list(columns))
    op.execute(f"UPDATE patients SET last_recorded_day = {_latest('patients.id')}")
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
    else:
        _sqlite_triggers()


def _sqlite_triggers() -> None:
    for table, columns in DAY_COLUMNS.items():
        # A new record can only move the day later: no need to look at the other records.
        # (SQLite's max(a, b) is null when an argument is: nulls are read as the smallest int.)
        op.execute(
            f"CREATE TRIGGER {table}_last_day_insert AFTER INSERT ON {table} "
            f"WHEN {' OR '.join(f'NEW.{c} IS NOT NULL' for c in columns)} BEGIN "
            f"UPDATE patients SET last_recorded_day = max(coalesce(last_recorded_day, -2147483648), "
            f"{', '.join(f'coalesce(NEW.{c}, -2147483648)' for c in columns)}) WHERE id = NEW.patient_id; END"
        )
        # A changed or deleted record may have been the latest: recompute from all of them.
        op.execute(
            f"CREATE TRIGGER {table}_last_day_update AFTER UPDATE OF {', '.join(columns)}, patient_id ON {table} "
            f"BEGIN "
            f"UPDATE patients SET last_recorded_day = {_latest('OLD.patient_id')} WHERE id = OLD.patient_id; "
            f"UPDATE patients SET last_recorded_day = {_latest('NEW.patient_id')} WHERE id = NEW.patient_id; END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_last_day_delete AFTER DELETE ON {table} BEGIN "
            f"UPDATE patients SET last_recorded_day = {_latest('OLD.patient_id')} WHERE id = OLD.patient_id; END"
        )


def _postgres_triggers() -> None:
    # The patient row is locked before the recompute, and the recompute is its own statement (a
    # fresh snapshot): a concurrent insert for the same patient is either seen or waits.
    op.execute(
        f"""
        CREATE FUNCTION patients_refresh_last_day(pid uuid) RETURNS void AS $$
        BEGIN
            PERFORM 1 FROM patients WHERE id = pid FOR UPDATE;
            UPDATE patients SET last_recorded_day = {_latest("pid")} WHERE id = pid;
        END $$ LANGUAGE plpgsql
        """
    )
    for table, columns in DAY_COLUMNS.items():
        news = ", ".join(f"NEW.{c}" for c in columns)
        op.execute(
            f"""
            CREATE FUNCTION {table}_last_day() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    IF GREATEST({news}) IS NOT NULL THEN
                        UPDATE patients SET last_recorded_day = GREATEST(last_recorded_day, {news})
                        WHERE id = NEW.patient_id;
                    END IF;
                    RETURN NULL;
                END IF;
                PERFORM patients_refresh_last_day(OLD.patient_id);
                IF TG_OP = 'UPDATE' AND NEW.patient_id <> OLD.patient_id THEN
                    PERFORM patients_refresh_last_day(NEW.patient_id);
                END IF;
                RETURN NULL;
            END $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_last_day AFTER INSERT OR DELETE OR UPDATE OF {', '.join(columns)}, patient_id "
            f"ON {table} FOR EACH ROW EXECUTE FUNCTION {table}_last_day()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in DAY_COLUMNS:
            op.execute(f"DROP TRIGGER {table}_last_day ON {table}")
            op.execute(f"DROP FUNCTION {table}_last_day()")
        op.execute("DROP FUNCTION patients_refresh_last_day(uuid)")
    else:
        for table in DAY_COLUMNS:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_last_day_{event}")
    for table, indexes in INDEXES.items():
        for columns in indexes:
            op.drop_index(_index_name(table, columns), table_name=table)
    op.execute("ALTER TABLE patients DROP COLUMN last_recorded_day")
