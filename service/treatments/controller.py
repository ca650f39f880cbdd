from typing import Annotated
from uuid import UUID

from litestar.params import FromQuery, QueryParameter
from sqlalchemy import exists, func
from sqlmodel import col, select

from service.common.controller import Resource, build_controller
from service.common.filters import Condition
from service.common.types import NO_NUL
from service.common.vocab import TreatmentPhase
from service.db import models
from service.treatments.schemas import Treatment, TreatmentCreate, TreatmentUpdate
from service.treatments.service import TreatmentRepository


def treatment_filters(
    patient_id: FromQuery[UUID | None] = None,
    study_id: FromQuery[UUID | None] = None,
    phase: FromQuery[TreatmentPhase | None] = None,
    agent: Annotated[
        str | None, QueryParameter(pattern=NO_NUL, max_length=200, description="Agent name, any case.")
    ] = None,
) -> list[Condition]:
    t = models.Treatment
    where: list[Condition] = []
    if patient_id:
        where.append(col(t.patient_id) == patient_id)
    if study_id:
        where.append(
            col(t.patient_id).in_(select(models.Patient.id).where(models.Patient.study_id == study_id))
        )
    if phase:
        where.append(col(t.phase) == phase)
    if agent:
        where.append(
            exists().where(
                col(models.TreatmentComponent.treatment_id) == col(t.id),
                col(models.TreatmentComponent.agent_id) == col(models.Agent.id),
                func.lower(models.Agent.name) == agent.lower(),
            )
        )
    return where


TreatmentController = build_controller(
    Resource(
        path="/treatments",
        tag="Treatments",
        singular="Treatment",
        plural="Treatments",
        read=Treatment,
        create=TreatmentCreate,
        update=TreatmentUpdate,
        repository=TreatmentRepository(),
        filters=treatment_filters,
        sort_columns={"start_day": models.Treatment.start_day},
        reason_required=True,
        patient_level=True,
        default_id_column=models.Treatment.id,
        delete_note="With `cascade=true`, adverse events attributed to it are kept but unlinked from it.",
    )
)
