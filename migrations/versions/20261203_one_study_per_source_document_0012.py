"""one study per source document: a unique index on studies.source_document

Concurrent imports of one document (or of one ClinicalTrials.gov record, whose source document
names its NCT id) could each store a study. The index makes the second insert fail, so they
give one 201 and 409s. A database that already holds such duplicates keeps the oldest study
under the name; each later one is renamed `<name> (duplicate N)`, so that nothing is lost and
the duplicates can be reviewed and deleted.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_studies_source_document"


def upgrade() -> None:
    bind = op.get_bind()
    duplicates = bind.execute(
        sa.text(
            "SELECT id, source_document FROM studies WHERE source_document IN "
            "(SELECT source_document FROM studies WHERE source_document IS NOT NULL "
            "GROUP BY source_document HAVING count(*) > 1) ORDER BY source_document, id"
        )
    ).all()
    seen: dict[str, int] = {}
    for study_id, source in duplicates:
        seen[source] = seen.get(source, 0) + 1
        if seen[source] > 1:  # ids are time-ordered: the first is the oldest
            bind.execute(
                sa.text("UPDATE studies SET source_document = :name WHERE id = :id"),
                {"name": f"{source[:180]} (duplicate {seen[source] - 1})", "id": study_id},
            )
    op.create_index(INDEX, "studies", ["source_document"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="studies")
