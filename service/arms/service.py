from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.arms.schemas import Arm
from service.common.repository import Repository, require
from service.db import cascade, models
from service.db.session import Reads
from service.errors import Conflict, UnknownReference


class ArmRepository(Repository[models.Arm]):
    model = models.Arm
    read_type = Arm
    label = "arm"
    children = {
        "patients": (models.Patient, models.Patient.arm_id),
        "reported results": (models.ReportedResult, models.ReportedResult.arm_id),
    }

    def columns(self, data: msgspec.Struct) -> dict[str, Any]:
        values = super().columns(data)
        values.pop("agent_ids", None)
        return values

    async def check(self, session: AsyncSession, values: dict[str, Any], existing: Any | None) -> None:
        if existing is None:
            await require(session, models.Study, values["study_id"], "study_id", "study")
        same_label = select(models.Arm.id).where(
            models.Arm.study_id == values["study_id"], models.Arm.label == values["label"]
        )
        if existing is not None:
            same_label = same_label.where(models.Arm.id != existing.id)
        if await session.scalar(same_label) is not None:
            raise Conflict(f"the study already has an arm labelled {values['label']!r}", field="label")

    async def save_children(self, session: AsyncSession, row: Any, data: msgspec.Struct) -> None:
        agent_ids = getattr(data, "agent_ids", msgspec.UNSET)
        if agent_ids is msgspec.UNSET:
            return
        unique_ids = list(dict.fromkeys(agent_ids))
        found = set(
            await session.scalars(select(models.Agent.id).where(col(models.Agent.id).in_(unique_ids)))
        )
        for agent_id in unique_ids:
            if agent_id not in found:
                raise UnknownReference(
                    f"agent {agent_id} (given in `agent_ids`) does not exist", field="agent_ids"
                )
        await session.execute(delete(models.ArmAgent).where(col(models.ArmAgent.arm_id) == row.id))
        session.add_all(models.ArmAgent(arm_id=row.id, agent_id=agent_id) for agent_id in unique_ids)

    async def to_read(self, session: Reads, rows: Sequence[Any]) -> list[Any]:
        links: dict[UUID, list[UUID]] = defaultdict(list)
        if rows:
            result = await session.execute(
                select(models.ArmAgent.arm_id, models.ArmAgent.agent_id)
                .where(col(models.ArmAgent.arm_id).in_([row.id for row in rows]))
                .order_by(col(models.ArmAgent.agent_id))
            )
            for arm_id, agent_id in result:
                links[arm_id].append(agent_id)
        return msgspec.convert(
            [{**values, "agent_ids": links[values["id"]]} for values in self.values_of(rows)], list[Arm]
        )

    async def delete_dependants(self, session: AsyncSession, row: Any) -> None:
        await cascade.delete_arm_contents(session, select(models.Arm.id).where(models.Arm.id == row.id))

    async def delete(
        self, session: AsyncSession, id: UUID, cascade_: bool, if_match: str | None = "*"
    ) -> None:
        row = await self.fetch(session, id)
        await session.execute(delete(models.ArmAgent).where(col(models.ArmAgent.arm_id) == row.id))
        await super().delete(session, id, cascade_, if_match)
