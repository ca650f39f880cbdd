"""The version of the data an analysis reads, from the audit trail: every create, update and
delete writes an audit record in its own transaction, numbered in order (`seq`), so the
highest number among a study's records changes with every committed write to the study or its
children, and the highest among records of no study with every write to the shared catalogues
and to tokens. Reading it costs two index lookups (migration 0019), on any replica."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.audit.trail import GENESIS
from service.caching.schemas import DataVersion
from service.db.models import AuditRecord

SEQ = col(AuditRecord.seq)
LAST = select(SEQ, col(AuditRecord.hash)).order_by(SEQ.desc()).limit(1)


async def _last(session: AsyncSession, where: object | None) -> tuple[int, str]:
    row = (await session.execute(LAST if where is None else LAST.where(where))).first()  # type: ignore[arg-type]
    return (int(row[0]), str(row[1])) if row is not None else (0, GENESIS)


async def data_version(session: AsyncSession, study_id: UUID | None) -> DataVersion:
    """`s<study's last record>.c<catalogue's last record>` for one study; `a<last record>` for
    answers computed across studies; with the hash of the later of the two records."""
    if study_id is None:
        seq, head = await _last(session, None)
        return DataVersion(source="live", version=f"a{seq}", audit_head=head, audit_seq=seq)
    study = await _last(session, col(AuditRecord.study_id) == study_id)
    catalogue = await _last(session, col(AuditRecord.study_id).is_(None))
    seq, head = max(study, catalogue)
    return DataVersion(source="live", version=f"s{study[0]}.c{catalogue[0]}", audit_head=head, audit_seq=seq)
