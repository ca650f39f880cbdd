"""The study document's envelope (its records are validated one by one on import, so that every
problem is reported with its JSON pointer) and the import's answer."""

from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta

from service.common.schemas import Input, Output
from service.common.types import NO_NUL, Name

Record = dict[str, Any]


class StudyDocument(Input):
    """A whole study, as `GET /studies/{id}/export?format=json` writes it."""

    format: Literal["leukemia-registry/study"]
    format_version: Literal[1]
    study: Record
    exported_at: Annotated[str, Meta(max_length=40, pattern=NO_NUL)] | None = None
    document: Name | None = None
    agents: list[Record] = []
    arms: list[Record] = []
    patients: list[Record] = []
    reported_results: list[Record] = []


class ImportResult(Output):
    study_id: UUID
    agents_added: int
    counts: dict[str, int]
