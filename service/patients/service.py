from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

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
        same_code = select(models.Patient.id).where(
            models.Patient.study_id == values["study_id"],
            models.Patient.subject_code == values["subject_code"],
        )
        if existing is not None:
            same_code = same_code.where(models.Patient.id != existing.id)
        if await session.scalar(same_code) is not None:
            raise Conflict(
                f"subject code {values['subject_code']!r} is already used in this study",
                field="subject_code",
            )

    async def delete_dependants(self, session: AsyncSession, row: Any) -> None:
        await cascade.delete_patient_records(
            session, select(models.Patient.id).where(models.Patient.id == row.id)
        )
