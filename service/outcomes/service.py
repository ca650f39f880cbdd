from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.repository import Repository, require
from service.common.rules import check_own_treatment, check_study_days
from service.db import models
from service.db.session import Reads
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
        self.rules(values)
        await check_own_treatment(session, values)

    def rules(self, values: dict[str, Any]) -> None:
        kind = values["kind"]
        allowed = FIELDS_BY_KIND[kind]
        for field in set().union(*FIELDS_BY_KIND.values()) - allowed:
            if values.get(field) not in (None, []):
                raise RuleViolation(f"`{field}` does not apply to an outcome of kind {kind}", field=field)
        check_study_days(values, "study_day")
        if kind == "event" and values.get("event_type") is None:
            raise RuleViolation("an event needs an event_type", field="event_type")
        _check_gvhd(values)
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

    async def to_read(self, session: Reads, rows: Sequence[Any]) -> list[Any]:
        return msgspec.convert(self.values_of(rows), list[Outcome])


GVHD_FIELDS = ("gvhd_kind", "gvhd_grade", "gvhd_severity", "gvhd_systemic_therapy")


def _check_gvhd(values: dict[str, Any]) -> None:
    """GVHD details only on a gvhd event; a gvhd event says which kind; a grade is acute's, a
    severity chronic's."""
    is_gvhd = values.get("kind") == "event" and values.get("event_type") == "gvhd"
    if not is_gvhd:
        for field in GVHD_FIELDS:
            if values.get(field) is not None:
                raise RuleViolation(f"`{field}` applies only to an event of type gvhd", field=field)
        return
    kind = values.get("gvhd_kind")
    if kind is None:
        raise RuleViolation("a gvhd event needs `gvhd_kind` (acute or chronic)", field="gvhd_kind")
    if kind == "acute" and values.get("gvhd_severity") is not None:
        raise RuleViolation(
            "acute GVHD is graded (`gvhd_grade`), not given a chronic severity", field="gvhd_severity"
        )
    if kind == "chronic" and values.get("gvhd_grade") is not None:
        raise RuleViolation(
            "chronic GVHD has a severity (`gvhd_severity`), not an acute grade", field="gvhd_grade"
        )
