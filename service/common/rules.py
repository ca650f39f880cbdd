"""Rules shared by the patient-level records (treatments, adverse events, outcomes)."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.common.repository import require
from service.db import models
from service.errors import RuleViolation


async def check_own_treatment(session: AsyncSession, values: dict[str, Any]) -> None:
    """A record's `treatment_id` (the treatment an adverse event followed, or an assessment
    evaluates) must name an existing treatment of the same patient (422 otherwise)."""
    if values.get("treatment_id") is None:
        return
    treatment = await require(session, models.Treatment, values["treatment_id"], "treatment_id", "treatment")
    if treatment.patient_id != values["patient_id"]:
        raise RuleViolation("the treatment belongs to another patient", field="treatment_id")


def check_study_days(values: dict[str, Any], *fields: str) -> None:
    """SDTM study days skip 0: day 1 is the first day of treatment and day -1 the day before."""
    for field in fields:
        if values.get(field) == 0:
            raise RuleViolation("study day 0 does not exist (day -1 is followed by day 1)", field=field)


def check_day_order(values: dict[str, Any], first: str, last: str) -> None:
    start, end = values.get(first), values.get(last)
    if start is not None and end is not None and end < start:
        raise RuleViolation(f"{last} ({end}) is before {first} ({start})", field=last)
