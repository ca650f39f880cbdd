"""Locking and unlocking a study (the check of every write: service.locks.refusal)."""

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import trail
from service.common.repository import flush, get_visible
from service.db import models
from service.db.models import utcnow
from service.errors import Conflict, NotFound
from service.locks.refusal import StudyLocked, describe


async def _study(session: AsyncSession, study_id: UUID) -> models.Study:
    study: models.Study | None = await get_visible(session, models.Study, study_id, for_update=True)
    if study is None:
        raise NotFound(f"no study with id {study_id}")
    return study


async def lock(session: AsyncSession, study_id: UUID, reason: str, actor: str) -> models.Study:
    study = await _study(session, study_id)
    if study.lock:
        raise StudyLocked(describe(study_id, study.lock) + "; it is already locked")
    value = {"reason": reason, "locked_at": utcnow().isoformat(), "locked_by": actor}
    await _set(session, study, value)
    return study


async def unlock(session: AsyncSession, study_id: UUID) -> models.Study:
    study = await _study(session, study_id)
    if not study.lock:
        raise Conflict(f"study {study_id} is not locked", field="lock")
    await _set(session, study, None)
    return study


async def _set(session: AsyncSession, study: models.Study, value: dict[str, Any] | None) -> None:
    before = study.lock  # plain JSON values, as stored
    study.lock = value
    study.version += 1
    study.updated_at = utcnow()
    await flush(session)
    await trail.record(session, "update", "study", study.id, {"lock": [before, value]})
