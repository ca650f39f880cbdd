"""The version of the data an analysis reads, from the audit trail: every create, update and
delete writes an audit record in its own transaction, numbered in order (`seq`), so the
highest number among a study's records changes with every committed write to the study or its
children, and the highest among records of no study with every write to the shared catalogues
and to tokens. Reading it costs one index lookup (migration 0019), on any replica."""

from uuid import UUID

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.db.models import AuditRecord

SEQ = col(AuditRecord.seq)


async def data_version(session: AsyncSession, study_id: UUID | None) -> str:
    """`s<study's last record>.c<catalogue's last record>` for one study; `a<last record>` for
    answers computed across studies."""
    if study_id is None:
        return f"a{await session.scalar(select(func.max(SEQ))) or 0}"
    study = await session.scalar(select(func.max(SEQ)).where(col(AuditRecord.study_id) == study_id))
    catalogue = await session.scalar(select(func.max(SEQ)).where(col(AuditRecord.study_id).is_(None)))
    return f"s{study or 0}.c{catalogue or 0}"
