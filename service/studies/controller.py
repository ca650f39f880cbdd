from typing import Annotated

from litestar.params import FromQuery, QueryParameter
from sqlalchemy import ColumnElement, exists, func, or_
from sqlmodel import col, select

from service.common.controller import Resource, build_controller
from service.common.filters import Condition, json_list_has, json_text_contains
from service.common.types import NO_NUL
from service.common.vocab import Design, OverallStatus
from service.db import models
from service.studies.schemas import Study, StudyCreate, StudyUpdate
from service.studies.service import StudyRepository


def uses_agent(study_id: object, agent: str) -> ColumnElement[bool]:
    """The study gives `agent` (by name, any case) in an arm or in any patient's treatment."""
    agent_ids = select(models.Agent.id).where(func.lower(models.Agent.name) == agent.lower())
    in_arm = exists().where(
        col(models.ArmAgent.arm_id) == col(models.Arm.id),
        col(models.Arm.study_id) == study_id,
        col(models.ArmAgent.agent_id).in_(agent_ids),
    )
    in_treatment = exists().where(
        col(models.TreatmentComponent.treatment_id) == col(models.Treatment.id),
        col(models.Treatment.patient_id) == col(models.Patient.id),
        col(models.Patient.study_id) == study_id,
        col(models.TreatmentComponent.agent_id).in_(agent_ids),
    )
    return or_(in_arm, in_treatment)


def study_filters(
    design: FromQuery[Design | None] = None,
    overall_status: FromQuery[OverallStatus | None] = None,
    condition: Annotated[
        str | None,
        QueryParameter(pattern=NO_NUL, max_length=200, description="Text within any condition, any case."),
    ] = None,
    agent: Annotated[
        str | None,
        QueryParameter(
            pattern=NO_NUL,
            max_length=200,
            description="Agent name, any case: studies giving it in an arm or a treatment.",
        ),
    ] = None,
    registry_id: Annotated[
        str | None,
        QueryParameter(pattern=NO_NUL, max_length=40, description="A registry identifier, e.g. NCT04351022."),
    ] = None,
) -> list[Condition]:
    where: list[Condition] = []
    if design:
        where.append(col(models.Study.design) == design)
    if overall_status:
        where.append(col(models.Study.overall_status) == overall_status)
    if condition:
        where.append(json_text_contains(models.Study.conditions, condition))
    if agent:
        where.append(uses_agent(models.Study.id, agent))
    if registry_id:
        where.append(json_list_has(models.Study.registry_ids, registry_id))
    return where


StudyController = build_controller(
    Resource(
        path="/studies",
        tag="Studies",
        singular="Study",
        plural="Studies",
        read=Study,
        create=StudyCreate,
        update=StudyUpdate,
        repository=StudyRepository(),
        filters=study_filters,
        sort_columns={"title": models.Study.title, "start_date": models.Study.start_date},
        default_id_column=models.Study.id,
        create_level="global curator",
        delete_note="With `cascade=true`, its arms, sites, patients (with all their records) and reported results go too.",
    )
)
