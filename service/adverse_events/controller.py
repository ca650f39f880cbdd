from typing import Annotated
from uuid import UUID

from litestar.params import FromQuery, QueryParameter
from sqlalchemy import func
from sqlmodel import col, select

from service.adverse_events.schemas import AdverseEvent, AdverseEventCreate, AdverseEventUpdate
from service.adverse_events.service import AdverseEventRepository
from service.common.controller import Resource, build_controller
from service.common.filters import Condition
from service.common.types import NO_NUL
from service.common.vocab import GradingSystem
from service.db import models


def adverse_event_filters(
    patient_id: FromQuery[UUID | None] = None,
    study_id: FromQuery[UUID | None] = None,
    treatment_id: FromQuery[UUID | None] = None,
    term: Annotated[
        str | None, QueryParameter(pattern=NO_NUL, max_length=200, description="Exact term, any case.")
    ] = None,
    grade_min: Annotated[
        int | None, QueryParameter(ge=1, le=5, description="Only events of at least this grade.")
    ] = None,
    grading_system: FromQuery[GradingSystem | None] = None,
) -> list[Condition]:
    ae = models.AdverseEvent
    where: list[Condition] = []
    if patient_id:
        where.append(col(ae.patient_id) == patient_id)
    if study_id:
        where.append(
            col(ae.patient_id).in_(select(models.Patient.id).where(models.Patient.study_id == study_id))
        )
    if treatment_id:
        where.append(col(ae.treatment_id) == treatment_id)
    if term:
        where.append(func.lower(ae.term) == term.lower())
    if grade_min is not None:
        where.append(col(ae.grade) >= grade_min)
    if grading_system:
        where.append(col(ae.grading_system) == grading_system)
    return where


AdverseEventController = build_controller(
    Resource(
        path="/adverse-events",
        tag="Adverse events",
        singular="AdverseEvent",
        plural="AdverseEvents",
        read=AdverseEvent,
        create=AdverseEventCreate,
        update=AdverseEventUpdate,
        repository=AdverseEventRepository(),
        filters=adverse_event_filters,
        sort_columns={
            "onset_day": models.AdverseEvent.onset_day,
            "grade": models.AdverseEvent.grade,
            "term": models.AdverseEvent.term,
        },
        reason_required=True,
        patient_level=True,
        default_id_column=models.AdverseEvent.id,
        cascade=False,
    )
)
