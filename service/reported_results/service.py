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
        if definition.get("type") in ("comparison", "hazard_ratio"):
            for arm_id in definition.get("arm_ids") or ():
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
        if (values.get("definition") or {}).get("type") == "hazard_ratio":
            _ratio(values)


def _ratio(values: dict[str, Any]) -> None:
    """A hazard ratio is positive and lies inside its interval: its log and standard error exist."""
    if values.get("value") is None or values["value"] <= 0:
        raise RuleViolation("a hazard ratio needs its value, above 0", field="value")
    for bound in ("ci_lower", "ci_upper"):
        if values.get(bound) is not None and values[bound] <= 0:
            raise RuleViolation(f"a hazard ratio's {bound} must be above 0", field=bound)
    if (values.get("ci_lower") is None) != (values.get("ci_upper") is None):
        raise RuleViolation("a hazard ratio's interval needs both ci_lower and ci_upper", field="ci_upper")
    if values.get("ci_lower") is not None and not values["ci_lower"] <= values["value"] <= values["ci_upper"]:
        raise RuleViolation("the hazard ratio lies outside its interval", field="value")
