from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.common.repository import Repository, require
from service.db import models
from service.errors import Conflict
from service.sites.schemas import Site


class SiteRepository(Repository[models.Site]):
    model = models.Site
    read_type = Site
    label = "site"
    # A site's patients are never deleted with it: they are moved or deleted first (409).
    children = {"patients": (models.Patient, models.Patient.site_id)}

    async def check(self, session: AsyncSession, values: dict[str, Any], existing: Any | None) -> None:
        if existing is None:
            await require(session, models.Study, values["study_id"], "study_id", "study")
        # Codes are compared without case: "a1" and "A1" would be the same site to a reader.
        same_code = select(models.Site.code).where(
            models.Site.study_id == values["study_id"],
            func.lower(models.Site.code) == values["code"].lower(),
        )
        if existing is not None:
            same_code = same_code.where(models.Site.id != existing.id)
        found = await session.scalar(same_code)
        if found is not None:
            raise Conflict(f"the study already has a site with code {found!r}", field="code")
