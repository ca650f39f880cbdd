"""sites: the centres of a study, and patients.site_id (optional: today's patients have none).

SQLite cannot add a foreign key to an existing table except with the column itself, so the
column is added with its REFERENCES clause there; Postgres adds a named constraint.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("study_id", sa.Uuid(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("institution", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("city", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("country", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("ctgov_facility_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name=op.f("fk_sites_study_id_studies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("study_id", "code", name=op.f("uq_sites_study_id_code")),
    )
    op.create_index(op.f("ix_sites_study_id"), "sites", ["study_id"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE patients ADD COLUMN site_id CHAR(32) REFERENCES sites (id)")
    else:
        op.add_column("patients", sa.Column("site_id", sa.Uuid(), nullable=True))
        op.create_foreign_key(op.f("fk_patients_site_id_sites"), "patients", "sites", ["site_id"], ["id"])
    op.create_index(op.f("ix_patients_site_id"), "patients", ["site_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_patients_site_id"), table_name="patients")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite drops a column only when no constraint names it: rebuild patients without it.
        # The rename at the end of the rebuild would re-check the triggers of other tables that
        # name patients (migration 0009) while patients is missing; the legacy rename skips that.
        op.execute("PRAGMA legacy_alter_table=ON")
        with op.batch_alter_table("patients") as batch:
            batch.drop_column("site_id")
        op.execute("PRAGMA legacy_alter_table=OFF")
    else:
        op.drop_constraint(op.f("fk_patients_site_id_sites"), "patients", type_="foreignkey")
        op.drop_column("patients", "site_id")
    op.drop_index(op.f("ix_sites_study_id"), table_name="sites")
    op.drop_table("sites")
