"""The study document's envelope (its records are validated one by one on import, so that every
problem is reported with its JSON pointer) and the import's answer."""

from typing import Any, Literal
from uuid import UUID

from service.common.schemas import Input, Output

Record = dict[str, Any]


class StudyDocument(Input):
    """A whole study, as `GET /studies/{id}/export?format=json` writes it."""

    format: Literal["leukemia-registry/study"]
    format_version: Literal[1]
    study: Record
    exported_at: str | None = None
    document: str | None = None
    agents: list[Record] = []
    arms: list[Record] = []
    patients: list[Record] = []
    reported_results: list[Record] = []


class ImportResult(Output):
    study_id: UUID
    agents_added: int
    counts: dict[str, int]
