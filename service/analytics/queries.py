"""Column-only fetches for the statistics (no ORM objects): a fixed number of Core queries per
request, whatever the number of patients.

Ids come back as the driver gives them (`raw`): building 100,000 `uuid.UUID` objects costs
more than the whole Kaplan–Meier computation, and the statistics only use ids as keys. Use
`as_uuid` where an id must appear in a response."""

import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from service.db.models import AdverseEvent, Arm, Outcome, Patient, Study, Treatment
from service.errors import NotFound

RFS_EVENTS = ("relapse", "progression", "death")


def raw(column: Any) -> Any:
    """The id column without its UUID result processing (a hex string on SQLite)."""
    return type_coerce(column, String()).label(column.key)


def as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def _rows(session: AsyncSession, statement: Any) -> Sequence[Any]:
    # Core execution on the request's connection: no ORM result machinery per row.
    return (await (await session.connection()).execute(statement)).all()


async def require_study(session: AsyncSession, study_id: UUID) -> None:
    if await session.get(Study, study_id) is None:
        raise NotFound(f"study {study_id} does not exist")


async def fetch_patients(session: AsyncSession, study_id: UUID) -> Sequence[Any]:
    """(id, subject_code, arm_id) of the study's patients in creation order; raw ids."""
    statement = (
        select(raw(col(Patient.id)), col(Patient.subject_code), raw(col(Patient.arm_id)))
        .where(col(Patient.study_id) == study_id)
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
    return column.in_(select(col(Patient.id)).where(col(Patient.study_id) == study_id))


async def fetch_response_assessments(session: AsyncSession, study_id: UUID) -> Sequence[Any]:
    """(patient_id, study_day, category, possible_categories, mrd_status, timepoint_label) of every response assessment."""
    statement = select(
        raw(col(Outcome.patient_id)),
        col(Outcome.study_day),
        col(Outcome.category),
        col(Outcome.possible_categories),
        col(Outcome.mrd_status),
        col(Outcome.timepoint_label),
    ).where(col(Outcome.kind) == "response", _of_study(col(Outcome.patient_id), study_id))
    return await _rows(session, statement)


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


async def fetch_swimmer_records(session: AsyncSession, study_id: UUID) -> tuple[Sequence[Any], Sequence[Any]]:
    """Treatments (patient, phase, regimen, start, end) and dated outcomes (patient, kind, day,
    category, possible categories, MRD status, event type): the swimmer plot's lanes."""
    treatments = (
        await session.execute(
            select(
                raw(col(Treatment.patient_id)),
                col(Treatment.phase),
                col(Treatment.regimen),
                col(Treatment.start_day),
                col(Treatment.end_day),
            ).where(_of_study(col(Treatment.patient_id), study_id))
        )
    ).all()
    outcomes = (
        await session.execute(
            select(
                raw(col(Outcome.patient_id)),
                col(Outcome.kind),
                col(Outcome.study_day),
                col(Outcome.category),
                col(Outcome.possible_categories),
                col(Outcome.mrd_status),
                col(Outcome.event_type),
            ).where(_of_study(col(Outcome.patient_id), study_id), col(Outcome.study_day).is_not(None))
        )
    ).all()
    return treatments, outcomes


def in_categories(categories: Sequence[str]) -> Any:
    """SQL: the assessment's category is in the set, or it is uncertain and every candidate is.

    Candidates are a JSON list stored as the service serialises it (`["CR", "CRi"]`): removing
    each wanted quoted name and the separators leaves `[]` exactly when all are wanted."""
    text = cast(col(Outcome.possible_categories), String)
    stripped: Any = text
    for category in categories:
        stripped = func.replace(stripped, f'"{category}"', "")
    stripped = func.replace(func.replace(stripped, ",", ""), " ", "")
    return or_(
        col(Outcome.category).in_(categories),
        and_(
            col(Outcome.category).is_(None),
            text != literal_column("'[]'"),
            stripped == literal_column("'[]'"),
        ),
    )


def _analysis_statement(study_id: UUID, endpoint: str, remission: Sequence[str]) -> Any:
    """One row per patient with everything a time-to-event analysis needs, computed in SQL:
    (id, subject_code, arm_id, origin_day, end_day, event, event_type, reason), ids raw.

    OS: origin 1, event = first death. RFS: origin = first dated remission assessment, event =
    first relapse, progression or death after it. Without an event, end_day is the last day of
    any outcome, adverse event or treatment. `reason` says why a patient is left out (null when in)."""
    pts = (
        select(col(Patient.id), col(Patient.subject_code), col(Patient.arm_id))
        .where(col(Patient.study_id) == study_id)
        .subquery()
    )
    days = union_all(
        select(col(Outcome.patient_id).label("pid"), col(Outcome.study_day).label("day")).join(
            pts, pts.c.id == col(Outcome.patient_id)
        ),
        select(col(AdverseEvent.patient_id), col(AdverseEvent.onset_day)).join(
            pts, pts.c.id == col(AdverseEvent.patient_id)
        ),
        select(col(AdverseEvent.patient_id), col(AdverseEvent.resolution_day)).join(
            pts, pts.c.id == col(AdverseEvent.patient_id)
        ),
        select(col(Treatment.patient_id), col(Treatment.start_day)).join(
            pts, pts.c.id == col(Treatment.patient_id)
        ),
        select(col(Treatment.patient_id), col(Treatment.end_day)).join(
            pts, pts.c.id == col(Treatment.patient_id)
        ),
    ).subquery()
    last = (
        select(days.c.pid, func.max(days.c.day).label("last_day"))
        .where(days.c.day.is_not(None))
        .group_by(days.c.pid)
        .subquery()
    )
    dated_events = and_(col(Outcome.kind) == "event", col(Outcome.study_day).is_not(None))
    if endpoint == "OS":
        first = (
            select(col(Outcome.patient_id).label("pid"), func.min(col(Outcome.study_day)).label("event_day"))
            .join(pts, pts.c.id == col(Outcome.patient_id))
            .where(dated_events, col(Outcome.event_type) == "death")
            .group_by(col(Outcome.patient_id))
            .subquery()
        )
        origin: Any = literal(1)
        event_type: Any = case((first.c.event_day.is_not(None), literal("death")))
        joins = [(first, first.c.pid == pts.c.id)]
        early = first.c.event_day < 1
    else:
        origins = (
            select(col(Outcome.patient_id).label("pid"), func.min(col(Outcome.study_day)).label("origin_day"))
            .join(pts, pts.c.id == col(Outcome.patient_id))
            .where(
                col(Outcome.kind) == "response", col(Outcome.study_day).is_not(None), in_categories(remission)
            )
            .group_by(col(Outcome.patient_id))
            .subquery()
        )
        after = (
            select(
                col(Outcome.patient_id).label("pid"),
                col(Outcome.study_day).label("day"),
                col(Outcome.event_type).label("kind"),
            )
            .join(origins, origins.c.pid == col(Outcome.patient_id))
            .where(
                dated_events,
                col(Outcome.event_type).in_(RFS_EVENTS),
                col(Outcome.study_day) > origins.c.origin_day,
            )
            .subquery()
        )
        first = select(after.c.pid, func.min(after.c.day).label("event_day")).group_by(after.c.pid).subquery()
        kinds = (
            select(after.c.pid, func.min(after.c.kind).label("event_type"))
            .join(first, and_(first.c.pid == after.c.pid, first.c.event_day == after.c.day))
            .group_by(after.c.pid)
            .subquery()
        )
        origin = origins.c.origin_day
        event_type = kinds.c.event_type
        joins = [
            (origins, origins.c.pid == pts.c.id),
            (first, first.c.pid == pts.c.id),
            (kinds, kinds.c.pid == pts.c.id),
        ]
        early = literal(False)
    has_event = first.c.event_day.is_not(None)
    reason = case(
        (origin.is_(None), literal("never reached CR/CRi/CRh on a dated assessment")),
        (and_(has_event, early), literal("death recorded before study day 1")),
        (and_(~has_event, last.c.last_day.is_(None)), literal("no record with a study day")),
        (and_(~has_event, last.c.last_day < origin), literal("no record on or after the origin day")),
    )
    statement = select(
        raw(pts.c.id),
        pts.c.subject_code,
        raw(pts.c.arm_id),
        origin.label("origin_day"),
        func.coalesce(first.c.event_day, last.c.last_day).label("end_day"),
        case((has_event, 1), else_=0).label("event"),
        event_type.label("event_type"),
        reason.label("reason"),
    ).select_from(pts)
    for table, condition in joins:
        statement = statement.outerjoin(table, condition)
    return statement.outerjoin(last, last.c.pid == pts.c.id)


async def fetch_analysis_rows(
    session: AsyncSession, study_id: UUID, endpoint: str, remission: Sequence[str]
) -> Sequence[Any]:
    """The per-patient analysis rows (see `_analysis_statement`) in creation order."""
    statement = _analysis_statement(study_id, endpoint, remission)
    return await _rows(session, statement.order_by(statement.selected_columns[0]))


async def fetch_analysis_counts(
    session: AsyncSession, study_id: UUID, endpoint: str, remission: Sequence[str]
) -> Sequence[Any]:
    """The same rows counted by (arm_id, origin_day, end_day, event, reason): a Kaplan–Meier
    curve needs only these counts, so 100,000 patients come back as a few thousand rows."""
    rows = _analysis_statement(study_id, endpoint, remission).subquery()
    statement = select(
        rows.c.arm_id, rows.c.origin_day, rows.c.end_day, rows.c.event, rows.c.reason, func.count().label("n")
    ).group_by(rows.c.arm_id, rows.c.origin_day, rows.c.end_day, rows.c.event, rows.c.reason)
    return await _rows(session, statement)
