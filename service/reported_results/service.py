from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.common.repository import Repository, require
from service.db import models
from service.errors import RuleViolation
from service.reported_results.schemas import ReportedResult


def _ordered(values: dict[str, Any], low: str, high: str) -> None:
    if values.get(low) is not None and values.get(high) is not None and values[low] > values[high]:
        raise RuleViolation(f"{low} is greater than {high}", field=high)


class ReportedResultRepository(Repository[models.ReportedResult]):
    model = models.ReportedResult
    read_type = ReportedResult
    label = "reported_result"

    async def check(self, session: AsyncSession, values: dict[str, Any], existing: Any | None) -> None:
        if existing is None:
            await require(session, models.Study, values["study_id"], "study_id", "study")
        if values.get("arm_id") is not None:
            arm = await require(session, models.Arm, values["arm_id"], "arm_id", "arm")
            if arm.study_id != values["study_id"]:
                raise RuleViolation("the arm belongs to another study", field="arm_id")
        self.rules(values)
        definition = values.get("definition") or {}
        if definition.get("type") == "comparison":
            for arm_id in definition["arm_ids"]:
                arm = await require(
                    session,
                    models.Arm,
                    arm_id if isinstance(arm_id, UUID) else UUID(arm_id),
                    "definition.arm_ids",
                    "arm",
                )
                if arm.study_id != values["study_id"]:
                    raise RuleViolation("a compared arm belongs to another study", field="definition.arm_ids")

    def rules(self, values: dict[str, Any]) -> None:
        if not values.get("provenance"):
            raise RuleViolation("a reported result needs its source location and quote", field="provenance")
        _ordered(values, "numerator", "denominator")
        _ordered(values, "ci_lower", "ci_upper")
        _ordered(values, "range_lower", "range_upper")
