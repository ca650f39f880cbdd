from typing import Annotated

from litestar.params import QueryParameter
from sqlalchemy import func
from sqlmodel import col

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
    atc: Annotated[
        str | None,
        QueryParameter(
            pattern=r"^[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$",
            description="WHO ATC code or a prefix of its levels, e.g. L01FC01 or L01F.",
        ),
    ] = None,
) -> list[Condition]:
    where: list[Condition] = []
    if atc:
        where.append(col(models.Agent.atc_code).like(f"{atc}%"))
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
        create_level="global curator",
        change_level="global curator",
        default_id_column=models.Agent.id,
        cascade=False,
        delete_note="An agent used by any treatment or arm cannot be deleted.",
    )
)
