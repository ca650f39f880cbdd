from typing import Any, ClassVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.agents.schemas import Agent
from service.common.lookalikes import check_visible, skeleton
from service.common.repository import Repository
from service.db import models
from service.errors import Conflict


class AgentRepository(Repository[models.Agent]):
    model = models.Agent
    read_type = Agent
    label = "agent"
    children: ClassVar[dict[str, Any]] = {
        "treatment components": (models.TreatmentComponent, models.TreatmentComponent.agent_id),
        "arm links": (models.ArmAgent, models.ArmAgent.agent_id),
    }

    def columns(self, data: msgspec.Struct) -> dict[str, Any]:
        values = super().columns(data)
        if values.get("name") is not None:
            values["name_key"] = name_key(values["name"])
        return values

    def rules(self, values: dict[str, Any]) -> None:
        check_visible(values["name"], "name")

    async def check(self, session: AsyncSession, values: dict[str, Any], existing: Any | None) -> None:
        self.rules(values)
        same = select(models.Agent.name).where(models.Agent.name_key == name_key(values["name"]))
        if existing is not None:
            same = same.where(models.Agent.id != existing.id)
        found = await session.scalar(same)
        if found is not None:
            raise Conflict(
                f"an agent named {found!r} already exists (names that look the same are one agent)",
                field="name",
            )


def name_key(name: str) -> str:
    """Agents are one when their names look the same, whatever the letter case."""
    return skeleton(name.lower())


async def agent_ids_by_name(session: AsyncSession) -> dict[str, Any]:
    rows = await session.execute(select(models.Agent.name, models.Agent.id))
    return {name.lower(): id for name, id in rows}
