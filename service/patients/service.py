from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.common.lookalikes import check_visible, skeleton
from service.common.repository import Repository, require
from service.db import cascade, models
from service.errors import Conflict, RuleViolation
from service.patients.schemas import Patient

SAFE_HARBOR_AGE = 90


class PatientRepository(Repository[models.Patient]):
    model = models.Patient
    read_type = Patient
    label = "patient"
    children = {
        "treatments": (models.Treatment, models.Treatment.patient_id),
        "adverse events": (models.AdverseEvent, models.AdverseEvent.patient_id),
        "outcomes": (models.Outcome, models.Outcome.patient_id),
        "patient links": (models.PatientLink, models.PatientLink.patient_a_id),
        "patient links (as second patient)": (models.PatientLink, models.PatientLink.patient_b_id),
    }

    def columns(self, data: msgspec.Struct) -> dict[str, Any]:
        values = super().columns(data)
        if values.get("subject_code") is not None:
            values["subject_key"] = skeleton(values["subject_code"])
        if values.get("age_years") is not None:
            values["age_capped"] = values["age_years"] >= SAFE_HARBOR_AGE
            values["age_years"] = min(values["age_years"], SAFE_HARBOR_AGE)
        return values

    async def check(self, session: AsyncSession, values: dict[str, Any], existing: Any | None) -> None:
        if existing is None:
            await require(session, models.Study, values["study_id"], "study_id", "study")
        if values.get("arm_id") is not None:
            arm = await require(session, models.Arm, values["arm_id"], "arm_id", "arm")
            if arm.study_id != values["study_id"]:
                raise RuleViolation(
                    f"arm {arm.id} belongs to another study than the patient's", field="arm_id"
                )
        if values.get("site_id") is not None:
            site = await require(session, models.Site, values["site_id"], "site_id", "site")
            if site.study_id != values["study_id"]:
                raise RuleViolation(
                    f"site {site.id} belongs to another study than the patient's", field="site_id"
                )
        self.rules(values)
        same_code = select(models.Patient.subject_code).where(
            models.Patient.study_id == values["study_id"],
            models.Patient.subject_key == skeleton(values["subject_code"]),
        )
        if existing is not None:
            same_code = same_code.where(models.Patient.id != existing.id)
        found = await session.scalar(same_code)
        if found is not None:
            raise Conflict(
                f"subject code {values['subject_code']!r} is already used in this study"
                + (f" (as {found!r}, which looks the same)" if found != values["subject_code"] else ""),
                field="subject_code",
            )

    def rules(self, values: dict[str, Any]) -> None:
        check_visible(values["subject_code"], "subject_code")

    async def delete_dependants(self, session: AsyncSession, row: Any) -> None:
        await cascade.delete_patient_records(
            session, select(models.Patient.id).where(models.Patient.id == row.id)
        )
