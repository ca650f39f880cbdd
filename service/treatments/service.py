from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.common.dates import check_partial_date
from service.common.repository import Repository, require
from service.common.rules import check_day_order, check_study_days
from service.db import cascade, models
from service.db.session import Reads
from service.errors import UnknownReference
from service.treatments.schemas import Treatment

COMPONENT_FIELDS = ("agent_id", "dose", "dose_unit", "route", "schedule")


class TreatmentRepository(Repository[models.Treatment]):
    model = models.Treatment
    read_type = Treatment
    label = "treatment"
    children = {
        "adverse events": (models.AdverseEvent, models.AdverseEvent.treatment_id),
        "response assessments": (models.Outcome, models.Outcome.treatment_id),
    }

    def columns(self, data: msgspec.Struct) -> dict[str, Any]:
        values = super().columns(data)
        values.pop("components", None)
        return values

    async def check(self, session: AsyncSession, values: dict[str, Any], existing: Any | None) -> None:
        if existing is None:
            await require(session, models.Patient, values["patient_id"], "patient_id", "patient")
        self.rules(values)

    def rules(self, values: dict[str, Any]) -> None:
        check_study_days(values, "start_day", "end_day")
        check_day_order(values, "start_day", "end_day")
        check_partial_date(values.get("start_date"), "start_date")

    async def save_children(self, session: AsyncSession, row: Any, data: msgspec.Struct) -> None:
        components = getattr(data, "components", msgspec.UNSET)
        if components is msgspec.UNSET:
            return
        wanted = {c.agent_id for c in components}
        found = set(await session.scalars(select(models.Agent.id).where(col(models.Agent.id).in_(wanted))))
        for missing in wanted - found:
            raise UnknownReference(
                f"agent {missing} (given in `components`) does not exist", field="components"
            )
        await session.execute(
            delete(models.TreatmentComponent).where(col(models.TreatmentComponent.treatment_id) == row.id)
        )
        session.add_all(
            models.TreatmentComponent(treatment_id=row.id, position=i, **msgspec.structs.asdict(c))
            for i, c in enumerate(components)
        )

    async def to_read(self, session: Reads, rows: Sequence[Any]) -> list[Any]:
        components: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
        if rows:
            table = models.TreatmentComponent.__table__  # type: ignore[attr-defined]
            # Columns, not ORM objects: plain reads run on a connection (service.db.session.PlainReads).
            result = await session.execute(
                select(table.c.treatment_id, *(table.c[field] for field in COMPONENT_FIELDS))
                .where(table.c.treatment_id.in_([r.id for r in rows]))
                .order_by(table.c.treatment_id, table.c.position)
            )
            for row in result:
                components[row.treatment_id].append(
                    {field: row._mapping[field] for field in COMPONENT_FIELDS}
                )
        return msgspec.convert(
            [{**values, "components": components[values["id"]]} for values in self.values_of(rows)],
            list[Treatment],
        )

    async def delete_dependants(self, session: AsyncSession, row: Any) -> None:
        await cascade.unlink_treatment(session, row.id)

    async def delete(
        self, session: AsyncSession, id: UUID, cascade_: bool, if_match: str | None = "*"
    ) -> None:
        # Components belong to the treatment itself: removed with it, never a reason to refuse.
        # If the delete is refused the request's transaction rolls this back.
        await session.execute(
            delete(models.TreatmentComponent).where(col(models.TreatmentComponent.treatment_id) == id)
        )
        await super().delete(session, id, cascade_, if_match)
