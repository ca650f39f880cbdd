from typing import Any

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.common.repository import Repository, require
from service.db import models
from service.errors import Conflict, RuleViolation
from service.patient_links.schemas import PatientLink


class PatientLinkRepository(Repository[models.PatientLink]):
    model = models.PatientLink
    read_type = PatientLink
    label = "patient_link"

    async def check(self, session: AsyncSession, values: dict[str, Any], existing: Any | None) -> None:
        if existing is not None:
            return
        a = await require(session, models.Patient, values["patient_a_id"], "patient_a_id", "patient")
        b = await require(session, models.Patient, values["patient_b_id"], "patient_b_id", "patient")
        if a.study_id == b.study_id:
            raise RuleViolation("both patients are in the same study", field="patient_b_id")
        link = models.PatientLink
        pair = or_(
            (link.patient_a_id == a.id) & (link.patient_b_id == b.id),
            (link.patient_a_id == b.id) & (link.patient_b_id == a.id),
        )
        if await session.scalar(select(link.id).where(pair)) is not None:
            raise Conflict(
                "these two patients are already linked; change that link instead", field="patient_b_id"
            )
