from collections.abc import Sequence
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


def audit_filters(
    resource_type: str | None,
    resource_id: UUID | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[Any]:
    where: list[Any] = []
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
