from uuid import UUID

from litestar.params import FromQuery
from sqlmodel import col

from service.arms.schemas import Arm, ArmCreate, ArmUpdate
from service.arms.service import ArmRepository
from service.common.controller import Resource, build_controller
from service.common.filters import Condition
from service.db import models


def arm_filters(study_id: FromQuery[UUID | None] = None) -> list[Condition]:
    return [col(models.Arm.study_id) == study_id] if study_id else []


ArmController = build_controller(
    Resource(
        path="/arms",
        tag="Arms",
        singular="Arm",
        plural="Arms",
        read=Arm,
        create=ArmCreate,
        update=ArmUpdate,
        repository=ArmRepository(),
        filters=arm_filters,
        sort_columns={"label": models.Arm.label},
        default_id_column=models.Arm.id,
        delete_note="With `cascade=true`, its patients (with all their records) and reported results go too.",
    )
)
