from typing import Annotated

from msgspec import Meta

from service.common.schemas import Input, ProvenanceList
from service.common.structs import read_struct, update_struct
from service.common.types import AtcCode, LongText, Name, ShortText

TargetList = Annotated[list[Name], Meta(max_length=20)]


class AgentCreate(Input):
    """A drug or cell therapy in the catalog, with its molecular targets."""

    name: Annotated[Name, Meta(examples=["daratumumab"])]
    agent_class: ShortText | None = None
    targets: Annotated[TargetList, Meta(examples=[["CD38"]])] = []
    description: LongText | None = None
    atc_code: AtcCode | None = None
    provenance: ProvenanceList = []


AgentUpdate = update_struct(AgentCreate, "AgentUpdate")
Agent = read_struct(AgentCreate, "Agent")
