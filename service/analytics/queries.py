"""Column-only fetches for the statistics (no ORM objects): a fixed number of Core queries per
request, whatever the number of patients.

Ids come back as the driver gives them (`raw`): building 100,000 `uuid.UUID` objects costs
more than the whole Kaplan–Meier computation, and the statistics only use ids as keys. Use
`as_uuid` where an id must appear in a response."""

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Column, String, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import Cast
from sqlmodel import col

from service.access.scope import current_scope
from service.analytics.fetched import Fetched, usable
from service.common.repository import fetch_page, get_visible
from service.db.models import AdverseEvent, Arm, Outcome, Patient, Study, Treatment
from service.errors import NotFound


def raw(column: Any) -> Any:
    """The id column as text, without UUID result processing: a hex string on SQLite, the dashed
    form on Postgres. Text rather than the driver's UUID objects, which the collector tracks: a
    row tuple holding one is walked at every collection while the rows are held (see
    service.analytics.fetched)."""
    return cast(column, String()).label(column.key)


def uncast_raw(value: Any) -> tuple[Any, bool]:
    """(the id column, True) for a column made text by `raw`; (value, False) for anything else.
    A statement that groups many rows by an id groups by the id and turns only the grouped rows
    into text: casting every patient's arm first cost a sixth of survival's statement at 100,000
    patients on Postgres (176 → 134 ms) and a tenth of incidence's (1.72 → 1.57 s)."""
    inner = getattr(value, "element", None)
    if isinstance(inner, Cast) and isinstance(inner.type, String) and isinstance(inner.clause, Column):
        return inner.clause, True
    return value, False


def as_text(value: Any, was_text: bool) -> Any:
    """The grouped id back as text (see uncast_raw), under its label."""
    return cast(value, String()).label(value.key) if was_text else value


def as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


FETCH_BATCH = 5000


# session.info: the transaction whose statements are planned per execution (`_planned_per_study`).
_CUSTOM_PLANS = "analytics.custom_plans"


async def _planned_per_study(session: AsyncSession) -> AsyncConnection:
    """The request's connection; on Postgres, with every statement of its transaction planned
    for the values it is given. The driver prepares each statement, and after five executions
    Postgres may settle on a generic plan, made for an average study: on the benchmark's
    registry (one study of 100,000 patients, two small ones) survival's statement then grouped
    an estimated 35,000 patients, spilled its grouping to disk and took 125 ms instead of 89 ms
    (median of 9). An analysis statement runs for tens of milliseconds; planning it takes one
    or two. SET LOCAL: the connection goes back to the pool without it, where the reads of
    single records keep their cached plans."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql" and connection.sync_connection is not None:
        # Outside a transaction (None) SET LOCAL would do nothing.
        transaction = connection.sync_connection.get_transaction()
        if transaction is not None and session.info.get(_CUSTOM_PLANS) is not transaction:
            await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
            session.info[_CUSTOM_PLANS] = transaction
    return connection


async def _rows(session: AsyncSession, statement: Any, *, counted: bool = False) -> Sequence[Any]:
    """Core execution on the request's connection (no ORM result machinery per row), read a batch
    at a time with the event loop free in between: 300,000 assessment rows decoded in one go kept
    every other request of the process waiting for seconds.

    `counted`: the statement's rows are counts, a few thousand at most, fetched in one go. A
    statement read a batch at a time never runs in parallel on Postgres (an execution that can
    be suspended gets no parallel workers), and the counts are the statements that scan a whole
    study: incidence's, read in batches, took 1.69 s at 100,000 patients against 1.49 s in one
    go (median of 5)."""
    connection = await _planned_per_study(session)
    lists_at = [i for i, c in enumerate(statement.selected_columns) if isinstance(c.type, JSON)]
    rows: list[Any] = []
    if counted:
        result = await connection.execute(statement)
        fields = list(result.keys())
        plain = usable(fields)
        rows.extend(_plain(result.all(), lists_at) if plain else result.all())
    else:
        streamed = await connection.stream(statement.execution_options(yield_per=FETCH_BATCH))
        fields = list(streamed.keys())
        plain = usable(fields)
        async for batch in streamed.partitions(FETCH_BATCH):
            rows.extend(_plain(batch, lists_at) if plain else batch)
            await asyncio.sleep(0)
    return Fetched.of_values(fields, rows) if plain else rows


def _plain(batch: Sequence[Any], lists_at: list[int]) -> list[Any]:
    """Plain tuples of plain values, not Rows: the statistics receive them in a worker process,
    and the collector soon stops looking at them (service.analytics.fetched). A JSON list (an
    assessment's candidate categories, [] when certain), at `lists_at`, becomes a tuple: a list
    is looked at at every collection, and so is the row that holds it."""
    if lists_at and batch:
        columns = list(zip(*batch, strict=True))
        for i in lists_at:
            columns[i] = tuple(tuple(v) if type(v) is list else v for v in columns[i])
        return list(zip(*columns, strict=True))
    return list(map(tuple, batch))


async def require_study(session: AsyncSession, study_id: UUID) -> None:
    if await get_visible(session, Study, study_id) is None:
        raise NotFound(f"study {study_id} does not exist")


def study_patients(study_id: UUID) -> Any:
    """SQL: the study's patients this request may analyse (all of them for a global role; a
    site grant's sites otherwise: service.access.scope)."""
    return current_scope().study_patients(study_id)


async def fetch_patients(session: AsyncSession, study_id: UUID, group_value: Any) -> Sequence[Any]:
    """(id, subject_code, group_value) of the study's patients in creation order; raw ids.
    `group_value`: SQL over Patient (service.analytics.estimands.groups.GroupSpec.column)."""
    statement = (
        select(raw(col(Patient.id)), col(Patient.subject_code), group_value.label("group_value"))
        .where(study_patients(study_id))
        .order_by(col(Patient.id))
    )
    return await _rows(session, statement)


async def fetch_arms(session: AsyncSession, study_id: UUID) -> Sequence[Any]:
    """(raw id, label, id) of the study's arms in creation order."""
    return await _rows(
        session,
        select(raw(col(Arm.id)).label("raw_id"), col(Arm.label), col(Arm.id))
        .where(col(Arm.study_id) == study_id)
        .order_by(col(Arm.id)),
    )


def _of_study(column: Any, study_id: UUID) -> Any:
    return column.in_(select(col(Patient.id)).where(study_patients(study_id)))


async def fetch_adverse_events(
    session: AsyncSession, study_id: UUID, grading_system: str | None, term: str | None
) -> Sequence[Any]:
    """(patient_id, term, grade) of the study's adverse events, optionally filtered."""
    statement = select(
        raw(col(AdverseEvent.patient_id)), col(AdverseEvent.term), col(AdverseEvent.grade)
    ).where(_of_study(col(AdverseEvent.patient_id), study_id))
    if grading_system:
        statement = statement.where(col(AdverseEvent.grading_system) == grading_system)
    if term:
        statement = statement.where(func.lower(col(AdverseEvent.term)) == term.lower())
    return await _rows(session, statement)


async def fetch_patient_page(
    session: AsyncSession, study_id: UUID, limit: int, offset: int
) -> tuple[Sequence[Any], int]:
    """(id, subject_code, arm_id, last_recorded_day) of one page of the study's patients, arm by
    arm (arms in creation order, patients without an arm last), and how many the study has."""
    return await fetch_page(
        session,
        Patient.__table__,  # type: ignore[attr-defined]
        [col(Patient.id), col(Patient.subject_code), col(Patient.arm_id), col(Patient.last_recorded_day)],
        [study_patients(study_id)],
        [col(Patient.arm_id).is_(None), col(Patient.arm_id), col(Patient.id)],
        limit,
        offset,
    )


async def fetch_group_sizes(session: AsyncSession, study_id: UUID, group_value: Any) -> Sequence[Any]:
    """(group_value, n): how many of the study's patients have each group value."""
    value = group_value.label("group_value")
    return await _rows(
        session,
        select(value, func.count().label("n")).where(study_patients(study_id)).group_by(value),
        counted=True,
    )


async def fetch_subjects_in(
    session: AsyncSession, study_id: UUID, condition: Any, limit: int = 50
) -> list[str]:
    """Subject codes of the study's patients meeting `condition` (the first `limit`, creation order)."""
    rows = await _rows(
        session,
        select(col(Patient.subject_code))
        .where(study_patients(study_id), condition)
        .order_by(col(Patient.id))
        .limit(limit),
    )
    return [r.subject_code for r in rows]


async def fetch_incidence_counts(
    session: AsyncSession, study_id: UUID, grading_system: str | None, term: str | None, group_value: Any
) -> Sequence[Any]:
    """(key, term, group_value, worst, n): how many patients of each group have each term (compared
    case-insensitively: `key`) at each worst grade (0 when every record of it is ungraded),
    counted in the database; `term` is one stored spelling of the key."""
    key = func.lower(col(AdverseEvent.term))
    worst = select(
        col(AdverseEvent.patient_id).label("patient_id"),
        key.label("key"),
        func.min(col(AdverseEvent.term)).label("term"),
        func.max(func.coalesce(col(AdverseEvent.grade), 0)).label("worst"),
    ).where(_of_study(col(AdverseEvent.patient_id), study_id))
    if grading_system:
        worst = worst.where(col(AdverseEvent.grading_system) == grading_system)
    if term:
        worst = worst.where(key == term.lower())
    per_patient = worst.group_by(col(AdverseEvent.patient_id), key).subquery()
    group_value, was_text = uncast_raw(group_value)
    patients = (
        select(col(Patient.id), group_value.label("group_value")).where(study_patients(study_id)).subquery()
    )
    return await _rows(
        session,
        select(
            per_patient.c.key,
            func.min(per_patient.c.term).label("term"),
            as_text(patients.c.group_value, was_text),
            per_patient.c.worst,
            func.count().label("n"),
        )
        .join(patients, patients.c.id == per_patient.c.patient_id)
        .group_by(per_patient.c.key, patients.c.group_value, per_patient.c.worst),
        counted=True,
    )


async def fetch_swimmer_records(
    session: AsyncSession, patient_ids: Sequence[UUID]
) -> tuple[Sequence[Any], Sequence[Any]]:
    """Treatments (patient, phase, regimen, start, end) and outcomes, dated or not (patient, kind,
    day, category, possible categories, MRD status, event type) of the given patients: the
    swimmer plot's lanes."""
    treatments = await _rows(
        session,
        select(
            col(Treatment.patient_id),
            col(Treatment.phase),
            col(Treatment.regimen),
            col(Treatment.start_day),
            col(Treatment.end_day),
        ).where(col(Treatment.patient_id).in_(patient_ids)),
    )
    outcomes = await _rows(
        session,
        select(
            col(Outcome.patient_id),
            col(Outcome.kind),
            col(Outcome.study_day),
            col(Outcome.category),
            col(Outcome.possible_categories),
            col(Outcome.mrd_status),
            col(Outcome.event_type),
        ).where(col(Outcome.patient_id).in_(patient_ids)),
    )
    return treatments, outcomes


async def fetch_patient_attributes(
    session: AsyncSession, study_id: UUID, attributes: Sequence[str]
) -> Sequence[Any]:
    """(id, subject_code, arm_id, *attributes) of the study's patients in creation order; raw ids."""
    statement = (
        select(
            raw(col(Patient.id)),
            col(Patient.subject_code),
            raw(col(Patient.arm_id)),
            *(getattr(Patient, a) for a in attributes),
        )
        .where(study_patients(study_id))
        .order_by(col(Patient.id))
    )
    return await _rows(session, statement)


async def fetch_transplants(session: AsyncSession, study_id: UUID) -> Sequence[Any]:
    """(patient_id raw, first_day, undated) per patient of the study with a transplant event
    (`hsct` outcome): the first dated study day (null when none is dated) and how many of them
    carry no study day."""
    statement = (
        select(
            raw(col(Outcome.patient_id)),
            func.min(col(Outcome.study_day)).label("first_day"),
            func.sum(case((col(Outcome.study_day).is_(None), 1), else_=0)).label("undated"),
        )
        .where(
            col(Outcome.kind) == "event",
            col(Outcome.event_type) == "hsct",
            _of_study(col(Outcome.patient_id), study_id),
        )
        .group_by(col(Outcome.patient_id))
    )
    return await _rows(session, statement)


async def fetch_patient_follow_up(session: AsyncSession, study_id: UUID, group_value: Any) -> Sequence[Any]:
    """(id, subject_code, group_value, last_recorded_day) of the study's patients; raw ids."""
    statement = (
        select(
            raw(col(Patient.id)),
            col(Patient.subject_code),
            group_value.label("group_value"),
            col(Patient.last_recorded_day),
        )
        .where(study_patients(study_id))
        .order_by(col(Patient.id))
    )
    return await _rows(session, statement)


async def fetch_events(session: AsyncSession, study_id: UUID, kinds: Sequence[str]) -> Sequence[Any]:
    """(patient_id raw, event_type, study_day, gvhd_kind, gvhd_grade) of the study's events of these kinds."""
    statement = select(
        raw(col(Outcome.patient_id)),
        col(Outcome.event_type),
        col(Outcome.study_day),
        col(Outcome.gvhd_kind),
        col(Outcome.gvhd_grade),
    ).where(
        col(Outcome.kind) == "event",
        col(Outcome.event_type).in_(list(kinds)),
        _of_study(col(Outcome.patient_id), study_id),
    )
    return await _rows(session, statement)
