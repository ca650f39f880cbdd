from typing import Annotated

from litestar.params import QueryParameter
from sqlalchemy import func

from service.agents.schemas import Agent, AgentCreate, AgentUpdate
from service.agents.service import AgentRepository
from service.common.controller import Resource, build_controller
from service.common.filters import Condition, json_list_has
from service.common.types import NO_NUL
from service.db import models


def agent_filters(
    name: Annotated[
        str | None, QueryParameter(pattern=NO_NUL, max_length=200, description="Exact name, any case.")
    ] = None,
    target: Annotated[
        str | None,
        QueryParameter(pattern=NO_NUL, max_length=200, description="A molecular target, e.g. CD38."),
    ] = None,
) -> list[Condition]:
    where: list[Condition] = []
    if name:
        where.append(func.lower(models.Agent.name) == name.lower())
    if target:
        where.append(json_list_has(models.Agent.targets, target))
    return where


AgentController = build_controller(
    Resource(
        path="/agents",
        tag="Agents",
        singular="Agent",
        plural="Agents",
        read=Agent,
        create=AgentCreate,
        update=AgentUpdate,
        repository=AgentRepository(),
        filters=agent_filters,
        sort_columns={"name": models.Agent.name},
        default_id_column=models.Agent.id,
        cascade=False,
        delete_note="An agent used by any treatment or arm cannot be deleted.",
    )
)
