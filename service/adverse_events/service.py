from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from service.adverse_events.schemas import AdverseEvent
from service.adverse_events.terms import canonical
from service.common.repository import Repository, require
from service.common.rules import check_day_order, check_own_treatment, check_study_days
from service.db import models
from service.errors import RuleViolation


class AdverseEventRepository(Repository[models.AdverseEvent]):
    model = models.AdverseEvent
    read_type = AdverseEvent
    label = "adverse_event"

    def columns(self, data: msgspec.Struct) -> dict[str, Any]:
        values = super().columns(data)
        if "term" in values:
            term = canonical(values["term"])
            values["term"], values["meddra_code"] = term.name, term.meddra_code
        return values

    async def check(self, session: AsyncSession, values: dict[str, Any], existing: Any | None) -> None:
        if existing is None:
            await require(session, models.Patient, values["patient_id"], "patient_id", "patient")
        await check_own_treatment(session, values)
        self.rules(values)

    def rules(self, values: dict[str, Any]) -> None:
        if values.get("grade") is None and values.get("grade_text") is None:
            raise RuleViolation(
                "give `grade`, or `grade_text` when the source prints no single grade", field="grade"
            )
        if values.get("grade") == 5 and values.get("outcome") != "fatal":
            raise RuleViolation("a grade 5 event is fatal: set outcome to `fatal`", field="outcome")
        if values.get("outcome") == "fatal" and values.get("grade") != 5:
            raise RuleViolation("a fatal event is grade 5", field="grade")
        check_study_days(values, "onset_day", "resolution_day")
        check_day_order(values, "onset_day", "resolution_day")
