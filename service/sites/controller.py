from typing import Annotated
from uuid import UUID

from litestar.params import FromQuery, QueryParameter
from sqlmodel import col

from service.common.controller import Resource, build_controller
from service.common.filters import Condition
from service.common.types import NO_NUL
from service.db import models
from service.sites.schemas import Site, SiteCreate, SiteUpdate
from service.sites.service import SiteRepository


def site_filters(
    study_id: FromQuery[UUID | None] = None,
    country: Annotated[
        str | None, QueryParameter(pattern=NO_NUL, max_length=200, description="Country, as stored.")
    ] = None,
) -> list[Condition]:
    where: list[Condition] = []
    if study_id:
        where.append(col(models.Site.study_id) == study_id)
    if country:
        where.append(col(models.Site.country) == country)
    return where


SiteController = build_controller(
    Resource(
        path="/sites",
        tag="Sites",
        singular="Site",
        plural="Sites",
        read=Site,
        create=SiteCreate,
        update=SiteUpdate,
        repository=SiteRepository(),
        filters=site_filters,
        sort_columns={"code": models.Site.code},
        default_id_column=models.Site.id,
        cascade=False,
        delete_note="Move or delete its patients first.",
        description="The centres of a study; a patient names its site in `site_id`.",
    )
)
