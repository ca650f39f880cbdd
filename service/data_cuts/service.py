"""Taking, reading and retiring cuts. A cut cannot be changed or deleted: no route does either,
and retiring only marks it (an admin, audited)."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlmodel import col, select

from service.access.scope import current_scope
from service.audit import trail
from service.common.repository import flush
from service.data_cuts.schemas import DataCut, DataCutCreate
from service.db import models
from service.db.models import as_utc, utcnow
from service.errors import Conflict, NotFound, RuleViolation


def visible(cut: models.DataCut) -> bool:
    """Whoever may read every patient row of each of its studies sees a cut."""
    scope = current_scope()
    if scope.everything:
        return True
    rows = scope.sites("rows")
    return all(UUID(s) in rows and rows[UUID(s)] is None for s in cut.study_ids)


def to_read(cut: models.DataCut) -> DataCut:
    return DataCut(
        id=cut.id,
        label=cut.label,
        note=cut.note,
        study_ids=[UUID(s) for s in cut.study_ids],
        sha256=cut.sha256,
        size=cut.size,
        audit_records=cut.audit_records,
        audit_head=cut.audit_head,
        created_at=as_utc(cut.created_at),
        created_by=cut.created_by,
        studies_locked=cut.studies_locked,
        retired_at=as_utc(cut.retired_at) if cut.retired_at else None,
        retired_by=cut.retired_by,
        retire_reason=cut.retire_reason,
    )


async def plan(session: AsyncSession, data: DataCutCreate) -> tuple[list[UUID], bool, tuple[int, str]]:
    """The studies a cut covers (in id order), whether all are locked, and the audit head."""
    rows = (await session.execute(select(col(models.Study.id), col(models.Study.lock)))).all()
    locks = {study_id: lock for study_id, lock in rows}
    if data.study_ids is None:
        study_ids = sorted(locks, key=str)
        if not study_ids:
            raise RuleViolation("there is no study to cut", field="study_ids")
    else:
        study_ids = sorted(set(data.study_ids), key=str)
        unknown = [str(s) for s in study_ids if s not in locks]
        if unknown:
            raise RuleViolation(f"no study with id {', '.join(unknown)}", field="study_ids")
    unlocked = [str(s) for s in study_ids if not locks[s]]
    if data.require_locked and unlocked:
        raise Conflict(
            f"the cut requires its studies to be locked; not locked: {', '.join(unlocked)} "
            "(POST /api/v1/studies/{id}/lock)",
            field="require_locked",
        )
    return study_ids, not unlocked, await trail.head(session)


async def store(
    session: AsyncSession,
    data: DataCutCreate,
    study_ids: list[UUID],
    locked: bool,
    head: tuple[int, str],
    built: tuple[bytes, int, str],
    actor: str,
) -> DataCut:
    compressed, size, digest = built
    cut = models.DataCut(
        label=data.label,
        note=data.note,
        study_ids=[str(s) for s in study_ids],
        sha256=digest,
        size=size,
        content=compressed,
        audit_records=head[0],
        audit_head=head[1],
        created_by=actor,
        studies_locked=locked,
    )
    session.add(cut)
    await flush(session)
    await trail.record(
        session,
        "create",
        "data_cut",
        cut.id,
        {
            "label": [None, cut.label],
            "study_ids": [None, cut.study_ids],
            "sha256": [None, digest],
            "audit_head": [None, f"{head[0]}:{head[1]}"],
        },
    )
    return to_read(cut)


async def find(
    session: AsyncSession, cut_id: UUID, for_update: bool = False, with_content: bool = False
) -> models.DataCut:
    statement = select(models.DataCut).where(col(models.DataCut.id) == cut_id)
    if not with_content:
        statement = statement.options(defer(models.DataCut.content))  # type: ignore[arg-type]
    if for_update:
        statement = statement.with_for_update()
    cut: models.DataCut | None = (await session.scalars(statement)).first()
    if cut is None or not visible(cut):
        raise NotFound(f"no data cut with id {cut_id}")
    return cut


async def listed(session: AsyncSession) -> list[DataCut]:
    statement = (
        select(models.DataCut)
        .options(defer(models.DataCut.content))  # type: ignore[arg-type]
        .order_by(col(models.DataCut.id))
    )
    cuts = (await session.scalars(statement)).all()
    return [to_read(cut) for cut in cuts if visible(cut)]


async def retire(session: AsyncSession, cut_id: UUID, reason: str, actor: str) -> DataCut:
    cut = await find(session, cut_id, for_update=True)
    if cut.retired_at is not None:
        raise Conflict(f"data cut {cut_id} was retired on {as_utc(cut.retired_at).date()}")
    cut.retired_at, cut.retired_by, cut.retire_reason = utcnow(), actor, reason
    await flush(session)
    await trail.record(session, "update", "data_cut", cut.id, {"retired": [None, reason]})
    return to_read(cut)


async def frozen_studies(session: AsyncSession, cut: models.DataCut) -> list[models.Study]:
    """The cut's studies as they stood (read from its frozen database), in id order."""
    ids = [UUID(s) for s in cut.study_ids]
    rows = await session.scalars(
        select(models.Study).where(col(models.Study.id).in_(ids)).order_by(col(models.Study.id))
    )
    return list(rows)
