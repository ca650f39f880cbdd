from typing import Annotated
from uuid import UUID

from msgspec import Meta

from service.common.schemas import Input, ProvenanceList
from service.common.structs import read_struct, update_struct
from service.common.types import Count, LongText, Name


class ArmCreate(Input):
    """An arm (or cohort) of a study and the agents it plans to give."""

    study_id: UUID
    label: Name
    description: LongText | None = None
    planned_size: Count | None = None
    agent_ids: Annotated[list[UUID], Meta(max_length=20, description="Agents given in this arm.")] = []
    provenance: ProvenanceList = []


ArmUpdate = update_struct(ArmCreate, "ArmUpdate", exclude=("study_id",))
Arm = read_struct(ArmCreate, "Arm")
