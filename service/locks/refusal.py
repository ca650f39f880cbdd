"""The check every write makes (service.access.writes): a write touching a locked study is
refused with 409 naming the lock."""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import driver_writes, models
from service.errors import Conflict


class StudyLocked(Conflict):
    slug = "study-locked"
    title = "The study is locked"


def describe(study_id: Any, lock: dict[str, Any]) -> str:
    return (
        f"study {study_id} is locked since {str(lock['locked_at'])[:10]} by {lock['locked_by']} "
        f"({lock['reason']}); an admin unlocks it with DELETE /api/v1/studies/{study_id}/lock"
    )


STUDIES = models.Study.__table__  # type: ignore[attr-defined]
_LOCK = select(STUDIES.c.lock).where(STUDIES.c.id == bindparam("id"))


async def refuse_if_locked(session: AsyncSession, study_ids: Iterable[Any]) -> None:
    for study_id in {s for s in study_ids if s is not None}:
        lock = (await driver_writes.execute(session, _LOCK, {"id": study_id})).scalar()
        if lock:
            raise StudyLocked(describe(study_id, lock))
