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
        select(raw(Patient.id), Patient.subject_code, raw(Patient.arm_id))
        .where(Patient.study_id == study_id)
        .order_by(Patient.id)
    )
    return await _rows(session, statement)


async def fetch_arms(session: AsyncSession, study_id: UUID) -> Sequence[Any]:
    """(raw id, label, id) of the study's arms in creation order."""
    return await _rows(
        session,
        select(raw(Arm.id).label("raw_id"), Arm.label, Arm.id)
        .where(Arm.study_id == study_id)
        .order_by(Arm.id),
    )


def _of_study(column: Any, study_id: UUID) -> Any:
    return column.in_(select(Patient.id).where(Patient.study_id == study_id))


async def fetch_response_assessments(session: AsyncSession, study_id: UUID) -> Sequence[Any]:
    """(patient_id, study_day, category, possible_categories, mrd_status, timepoint_label) of every response assessment."""
    statement = select(
        raw(Outcome.patient_id),
        Outcome.study_day,
        Outcome.category,
        Outcome.possible_categories,
        Outcome.mrd_status,
        Outcome.timepoint_label,
    ).where(Outcome.kind == "response", _of_study(Outcome.patient_id, study_id))
    return await _rows(session, statement)


async def fetch_adverse_events(
    session: AsyncSession, study_id: UUID, grading_system: str | None, term: str | None
) -> Sequence[Any]:
    """(patient_id, term, grade) of the study's adverse events, optionally filtered."""
    statement = select(raw(AdverseEvent.patient_id), AdverseEvent.term, AdverseEvent.grade).where(
        _of_study(AdverseEvent.patient_id, study_id)
    )
    if grading_system:
        statement = statement.where(AdverseEvent.grading_system == grading_system)
    if term:
        statement = statement.where(func.lower(AdverseEvent.term) == term.lower())
    return await _rows(session, statement)


async def fetch_swimmer_records(session: AsyncSession, study_id: UUID) -> tuple[Sequence[Any], Sequence[Any]]:
    """Treatments (patient, phase, regimen, start, end) and dated outcomes (patient, kind, day,
    category, possible categories, MRD status, event type): the swimmer plot's lanes."""
    treatments = (
        await session.execute(
            select(
                raw(Treatment.patient_id),
                Treatment.phase,
                Treatment.regimen,
                Treatment.start_day,
                Treatment.end_day,
            ).where(_of_study(Treatment.patient_id, study_id))
        )
    ).all()
    outcomes = (
        await session.execute(
            select(
                raw(Outcome.patient_id),
                Outcome.kind,
                Outcome.study_day,
                Outcome.category,
                Outcome.possible_categories,
                Outcome.mrd_status,
                Outcome.event_type,
            ).where(_of_study(Outcome.patient_id, study_id), Outcome.study_day.is_not(None))  # type: ignore[union-attr]
        )
    ).all()
    return treatments, outcomes


def in_categories(categories: Sequence[str]) -> Any:
    """SQL: the assessment's category is in the set, or it is uncertain and every candidate is.

    Candidates are a JSON list stored as the service serialises it (`["CR", "CRi"]`): removing
    each wanted quoted name and the separators leaves `[]` exactly when all are wanted."""
    text = cast(Outcome.possible_categories, String)
    stripped: Any = text
    for category in categories:
        stripped = func.replace(stripped, f'"{category}"', "")
    stripped = func.replace(func.replace(stripped, ",", ""), " ", "")
    return or_(
        Outcome.category.in_(categories),  # type: ignore[union-attr]
        and_(Outcome.category.is_(None), text != literal_column("'[]'"), stripped == literal_column("'[]'")),  # type: ignore[union-attr]
    )


def _analysis_statement(study_id: UUID, endpoint: str, remission: Sequence[str]) -> Any:
    """One row per patient with everything a time-to-event analysis needs, computed in SQL:
    (id, subject_code, arm_id, origin_day, end_day, event, event_type, reason), ids raw.

    OS: origin 1, event = first death. RFS: origin = first dated remission assessment, event =
    first relapse, progression or death after it. Without an event, end_day is the last day of
    any outcome, adverse event or treatment. `reason` says why a patient is left out (null when in)."""
    pts = (
        select(Patient.id, Patient.subject_code, Patient.arm_id)
        .where(Patient.study_id == study_id)
        .subquery()
    )
    days = union_all(
        select(Outcome.patient_id.label("pid"), Outcome.study_day.label("day")).join(
            pts, pts.c.id == Outcome.patient_id
        ),  # type: ignore[attr-defined]
        select(AdverseEvent.patient_id, AdverseEvent.onset_day).join(
            pts, pts.c.id == AdverseEvent.patient_id
        ),
        select(AdverseEvent.patient_id, AdverseEvent.resolution_day).join(
            pts, pts.c.id == AdverseEvent.patient_id
        ),
        select(Treatment.patient_id, Treatment.start_day).join(pts, pts.c.id == Treatment.patient_id),
        select(Treatment.patient_id, Treatment.end_day).join(pts, pts.c.id == Treatment.patient_id),
    ).subquery()
    last = (
        select(days.c.pid, func.max(days.c.day).label("last_day"))
        .where(days.c.day.is_not(None))
        .group_by(days.c.pid)
        .subquery()
    )
    dated_events = and_(Outcome.kind == "event", Outcome.study_day.is_not(None))  # type: ignore[union-attr]
    if endpoint == "OS":
        first = (
            select(Outcome.patient_id.label("pid"), func.min(Outcome.study_day).label("event_day"))  # type: ignore[attr-defined]
            .join(pts, pts.c.id == Outcome.patient_id)
            .where(dated_events, Outcome.event_type == "death")
            .group_by(Outcome.patient_id)
            .subquery()
        )
        origin: Any = literal(1)
        event_type: Any = case((first.c.event_day.is_not(None), literal("death")))
        joins = [(first, first.c.pid == pts.c.id)]
        early = first.c.event_day < 1
    else:
        origins = (
            select(Outcome.patient_id.label("pid"), func.min(Outcome.study_day).label("origin_day"))  # type: ignore[attr-defined]
            .join(pts, pts.c.id == Outcome.patient_id)
            .where(Outcome.kind == "response", Outcome.study_day.is_not(None), in_categories(remission))  # type: ignore[union-attr]
            .group_by(Outcome.patient_id)
            .subquery()
        )
        after = (
            select(
                Outcome.patient_id.label("pid"),
                Outcome.study_day.label("day"),
                Outcome.event_type.label("kind"),
            )  # type: ignore[attr-defined]
            .join(origins, origins.c.pid == Outcome.patient_id)
            .where(dated_events, Outcome.event_type.in_(RFS_EVENTS), Outcome.study_day > origins.c.origin_day)  # type: ignore[union-attr,operator]
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
