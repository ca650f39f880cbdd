from typing import Any, ClassVar

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.agents.schemas import Agent
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

    async def check(self, session: AsyncSession, values: dict[str, Any], existing: Any | None) -> None:
        same_name = select(models.Agent.id).where(func.lower(models.Agent.name) == values["name"].lower())
        if existing is not None:
            same_name = same_name.where(models.Agent.id != existing.id)
        if await session.scalar(same_name) is not None:
            raise Conflict(f"an agent named {values['name']!r} already exists", field="name")


async def agent_ids_by_name(session: AsyncSession) -> dict[str, Any]:
    rows = await session.execute(select(models.Agent.name, models.Agent.id))
    return {name.lower(): id for name, id in rows}
