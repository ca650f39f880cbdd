from typing import Annotated
from uuid import UUID

from litestar.params import FromQuery, QueryParameter
from sqlmodel import col

from service.common.controller import Resource, build_controller
from service.common.filters import Condition, text_contains
from service.common.types import NO_NUL
from service.db import models
from service.reported_results.schemas import ReportedResult, ReportedResultCreate, ReportedResultUpdate
from service.reported_results.service import ReportedResultRepository


def reported_result_filters(
    study_id: FromQuery[UUID | None] = None,
    arm_id: FromQuery[UUID | None] = None,
    measure: Annotated[
        str | None,
        QueryParameter(pattern=NO_NUL, max_length=200, description="Text within the measure, any case."),
    ] = None,
) -> list[Condition]:
    r = models.ReportedResult
    where: list[Condition] = []
    if study_id:
        where.append(col(r.study_id) == study_id)
    if arm_id:
        where.append(col(r.arm_id) == arm_id)
    if measure:
        where.append(text_contains(r.measure, measure))
    return where


ReportedResultController = build_controller(
    Resource(
        path="/reported-results",
        tag="Reported results",
        singular="ReportedResult",
        plural="ReportedResults",
        read=ReportedResult,
        create=ReportedResultCreate,
        update=ReportedResultUpdate,
        repository=ReportedResultRepository(),
        filters=reported_result_filters,
        sort_columns={"measure": models.ReportedResult.measure},
        default_id_column=models.ReportedResult.id,
        cascade=False,
    )
)
