"""The check every write makes (service.access.writes): a write touching a locked study is
refused with 409 naming the lock."""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, bindparam, select
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
# session.info: {study id: its lock or None}, read in this transaction along with a patient
# (with_study_lock), so that the write's check below needs no statement of its own.
LOCKS_READ = "study_locks_read"
STUDY_LOCK = "study_lock"  # the label of the lock's column in with_study_lock's rows


def with_study_lock(statement: Select[Any], study_id: Any) -> Select[Any]:
    """`statement` (a row that belongs to a study) with its study's lock as a column `study_lock`:
    a child's create reads its patient, then checks the patient's study for a lock; one round
    trip instead of two. Record what it read with `remember_lock`."""
    return statement.add_columns(STUDIES.c.lock.label(STUDY_LOCK)).join(STUDIES, STUDIES.c.id == study_id)


def remember_lock(session: AsyncSession, study_id: Any, lock: Any) -> None:
    session.info.setdefault(LOCKS_READ, {})[study_id] = lock


async def refuse_if_locked(session: AsyncSession, study_ids: Iterable[Any]) -> None:
    # Read earlier in the same transaction or now: either way a plain read at READ COMMITTED, as
    # the lock's writer takes its study row FOR UPDATE and readers do not wait for it.
    known = session.info.get(LOCKS_READ, {})
    for study_id in {s for s in study_ids if s is not None}:
        if study_id in known:
            lock = known[study_id]
        else:
            lock = (await driver_writes.execute(session, _LOCK, {"id": study_id})).scalar()
        if lock:
            raise StudyLocked(describe(study_id, lock))
