"""Registry records as received: one row per version imported, compressed. The provenance
pointers of a study's imported fields and results point into its latest record; older versions
stay as the history of what the registry said."""

import hashlib
import zlib
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.db import models


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def new_row(study_id: UUID, source: str, body: bytes, version: str | None) -> models.SourceRecord:
    return models.SourceRecord(
        study_id=study_id,
        source=source,
        version=version,
        sha256=digest(body),
        size=len(body),
        content=zlib.compress(body, 6),
    )


def content(row: models.SourceRecord) -> bytes:
    return zlib.decompress(row.content)


async def history(session: AsyncSession, study_id: UUID) -> list[models.SourceRecord]:
    """The study's records, oldest first (ids are time-ordered)."""
    statement = (
        select(models.SourceRecord)
        .where(col(models.SourceRecord.study_id) == study_id)
        .order_by(col(models.SourceRecord.id))
    )
    return list((await session.scalars(statement)).all())


async def latest(session: AsyncSession, study_id: UUID) -> models.SourceRecord | None:
    statement = (
        select(models.SourceRecord)
        .where(col(models.SourceRecord.study_id) == study_id)
        .order_by(col(models.SourceRecord.id).desc())
        .limit(1)
    )
    return (await session.scalars(statement)).first()


async def received(session: AsyncSession, study_id: UUID) -> dict[str, Any] | None:
    """The study's latest record exactly as received (None for a study not imported from one)."""
    row = await latest(session, study_id)
    if row is None:
        return None
    record = msgspec.json.decode(content(row))
    return record if isinstance(record, dict) else None
