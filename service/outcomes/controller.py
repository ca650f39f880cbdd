from typing import Annotated
from uuid import UUID

from litestar.params import FromQuery, QueryParameter
from sqlmodel import col, select

from service.common.controller import Resource, build_controller
from service.common.filters import Condition
from service.common.vocab import EventType, MrdStatus, OutcomeKind, ResponseCategory
from service.db import models
from service.outcomes.schemas import Outcome, OutcomeCreate, OutcomeUpdate
from service.outcomes.service import OutcomeRepository


def outcome_filters(
    patient_id: FromQuery[UUID | None] = None,
    study_id: FromQuery[UUID | None] = None,
    kind: FromQuery[OutcomeKind | None] = None,
    category: FromQuery[ResponseCategory | None] = None,
    event_type: FromQuery[EventType | None] = None,
    mrd_status: FromQuery[MrdStatus | None] = None,
    day_max: Annotated[
        int | None, QueryParameter(ge=-36500, le=36500, description="Only outcomes up to this study day.")
    ] = None,
) -> list[Condition]:
    o = models.Outcome
    where: list[Condition] = []
    if patient_id:
        where.append(col(o.patient_id) == patient_id)
    if study_id:
        where.append(
            col(o.patient_id).in_(select(models.Patient.id).where(models.Patient.study_id == study_id))
        )
    if kind:
        where.append(col(o.kind) == kind)
    if category:
        where.append(col(o.category) == category)
    if event_type:
        where.append(col(o.event_type) == event_type)
    if mrd_status:
        where.append(col(o.mrd_status) == mrd_status)
    if day_max is not None:
        where.append(col(o.study_day) <= day_max)
    return where


OutcomeController = build_controller(
    Resource(
        path="/outcomes",
        tag="Outcomes",
        singular="Outcome",
        plural="Outcomes",
        read=Outcome,
        create=OutcomeCreate,
        update=OutcomeUpdate,
        repository=OutcomeRepository(),
        filters=outcome_filters,
        sort_columns={"study_day": models.Outcome.study_day},
        reason_required=True,
        patient_level=True,
        default_id_column=models.Outcome.id,
        cascade=False,
        description="`kind` tells a response assessment, an event and an observation apart.",
    )
)
