from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.audit.schemas import AuditEntry
from service.common.filters import Condition
from service.db.models import AuditRecord, as_utc


def to_entry(row: AuditRecord) -> AuditEntry:
    return msgspec.convert({**row.model_dump(), "recorded_at": as_utc(row.recorded_at)}, AuditEntry)


async def list_entries(
    session: AsyncSession, where: Sequence[Condition], limit: int, offset: int
) -> tuple[list[AuditEntry], int]:
    base = select(AuditRecord).where(*where)
    total = await session.scalar(select(func.count()).select_from(base.subquery()))
    rows = (await session.scalars(base.order_by(col(AuditRecord.seq)).limit(limit).offset(offset))).all()
    return [to_entry(r) for r in rows], int(total or 0)


STREAM_BATCH = 1000


async def stream_entries(factory: Any, where: Sequence[Condition]) -> AsyncIterator[bytes]:
    """Every matching record as NDJSON, oldest first, read in batches by `seq`, each batch in a
    short transaction of its own: a slow reader of a long log holds no connection while it
    reads, and the stream ends at the last record that existed when it began."""
    encode = msgspec.json.Encoder().encode
    async with factory() as session:
        last = await session.scalar(select(func.max(AuditRecord.seq)))
    after = 0
    while last is not None and after < last:
        async with factory() as session:
            rows = (
                await session.scalars(
                    select(AuditRecord)
                    .where(*where, col(AuditRecord.seq) > after, col(AuditRecord.seq) <= last)
                    .order_by(col(AuditRecord.seq))
                    .limit(STREAM_BATCH)
                )
            ).all()
        if not rows:
            return
        after = int(rows[-1].seq or 0)
        yield b"".join(encode(to_entry(row)) + b"\n" for row in rows)


def audit_filters(
    resource_type: str | None,
    resource_id: UUID | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
    study_id: UUID | None = None,
    action: str | None = None,
) -> list[Any]:
    where: list[Any] = []
    if study_id:
        where.append(AuditRecord.study_id == study_id)
    if action:
        where.append(AuditRecord.action == action)
    if resource_type:
        where.append(AuditRecord.resource_type == resource_type)
    if resource_id:
        where.append(AuditRecord.resource_id == resource_id)
    if actor:
        where.append(AuditRecord.actor == actor)
    if since:
        where.append(AuditRecord.recorded_at >= since)
    if until:
        where.append(AuditRecord.recorded_at <= until)
    return where
