from uuid import UUID

from litestar.params import FromQuery
from sqlalchemy import or_
from sqlmodel import col

from service.common.controller import Resource, build_controller
from service.common.filters import Condition
from service.db import models
from service.patient_links.schemas import PatientLink, PatientLinkCreate, PatientLinkUpdate
from service.patient_links.service import PatientLinkRepository


def patient_link_filters(patient_id: FromQuery[UUID | None] = None) -> list[Condition]:
    link = models.PatientLink
    return (
        [or_(col(link.patient_a_id) == patient_id, col(link.patient_b_id) == patient_id)]
        if patient_id
        else []
    )


PatientLinkController = build_controller(
    Resource(
        path="/patient-links",
        tag="Patient links",
        singular="PatientLink",
        plural="PatientLinks",
        read=PatientLink,
        create=PatientLinkCreate,
        update=PatientLinkUpdate,
        repository=PatientLinkRepository(),
        filters=patient_link_filters,
        sort_columns={},
        patient_level=True,
        default_id_column=models.PatientLink.id,
        cascade=False,
        description="Evidence queries count patients linked as `same` once.",
    )
)
