from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.repository import Repository, require, row_values
from service.common.rules import check_own_treatment, check_study_days
from service.db import models
from service.errors import RuleViolation
from service.outcomes.schemas import FIELDS_BY_KIND, Outcome


class OutcomeRepository(Repository[models.Outcome]):
    model = models.Outcome
    read_type = Outcome
    label = "outcome"

    def columns(self, data: msgspec.Struct) -> dict[str, Any]:
        values = super().columns(data)
        tag = type(data).__struct_config__.tag
        if isinstance(tag, str):
            values["kind"] = tag
        return values

    async def check(self, session: AsyncSession, values: dict[str, Any], existing: Any | None) -> None:
        if existing is None:
            await require(session, models.Patient, values["patient_id"], "patient_id", "patient")
        kind = values["kind"]
        allowed = FIELDS_BY_KIND[kind]
        for field in set().union(*FIELDS_BY_KIND.values()) - allowed:
            if values.get(field) not in (None, []):
                raise RuleViolation(f"`{field}` does not apply to an outcome of kind {kind}", field=field)
        check_study_days(values, "study_day")
        if kind == "event" and values.get("event_type") is None:
            raise RuleViolation("an event needs an event_type", field="event_type")
        if kind == "observation" and values.get("name") is None:
            raise RuleViolation("an observation needs a name", field="name")
        candidates = values.get("possible_categories") or []
        if candidates and (values.get("category") is not None or len(set(candidates)) < 2):
            raise RuleViolation(
                "possible_categories lists two or more candidates, and only when category is null",
                field="possible_categories",
            )
        if (
            kind == "response"
            and values.get("category") is None
            and not candidates
            and not values.get("mrd_status")
        ):
            # A placeholder would count in denominators as an assessment without a result.
            raise RuleViolation(
                "a response assessment needs a result: `category`, `possible_categories` or `mrd_status`",
                field="category",
            )
        await check_own_treatment(session, values)

    async def to_read(self, session: AsyncSession, rows: Sequence[Any]) -> list[Any]:
        return [msgspec.convert(row_values(row), Outcome) for row in rows]
