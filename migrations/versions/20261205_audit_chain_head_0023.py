"""audit chain head: on Postgres, a function that takes the audit chain's lock and then reads the
chain's last hash and the transaction's clock, in one round trip (service.audit.trail). A
VOLATILE PL/pgSQL function reads each of its queries with a fresh snapshot at READ COMMITTED, so
the read after the lock sees the record that the previous holder of the lock committed; one
plain statement could not (its snapshot is taken before the lock is granted). SQLite: nothing.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 04:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_chain_head(lock_key bigint)
            RETURNS TABLE (last_hash varchar, clock timestamptz) AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock(lock_key);
                RETURN QUERY SELECT
                    (SELECT a.hash FROM audit_records a ORDER BY a.seq DESC LIMIT 1)::varchar,
                    current_timestamp;
            END $$ LANGUAGE plpgsql VOLATILE
            """
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_chain_head(bigint)")
