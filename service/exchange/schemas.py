"""The study document as the contract describes it (export's `json` format, import's body), and
the import's answer. The import decodes the envelope first and each record on its own
(service.exchange.study_document), so that every problem is reported with its JSON pointer."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from service.common.schemas import Input, Output
from service.common.types import NO_NUL, Name
from service.exchange import records as r


def _list(item: Any) -> Any:
    return list[item]


StudyDocument: Any = msgspec.defstruct(
    "StudyDocument",
    [
        ("format", Literal["leukemia-registry/study"]),
        ("format_version", Literal[1]),
        ("study", r.StudyRecord),
        ("exported_at", Annotated[str, Meta(max_length=40, pattern=NO_NUL)] | None, None),
        ("document", Name | None, None),
        ("agents", _list(r.AgentRecord), []),
        ("arms", _list(r.ArmRecord), []),
        ("patients", _list(r.PatientRecord), []),
        ("reported_results", _list(r.ReportedResultRecord), []),
    ],
    bases=(Input,),
    kw_only=True,
    module=__name__,
)
StudyDocument.__doc__ = "A whole study, as `GET /studies/{id}/export?format=json` writes it."


class RecordUpdate(Output):
    """What a newer version of an imported registry record changed in its study."""

    previous_version: str | None
    version: str | None
    previous_sha256: str | None
    sha256: str
    fields_changed: list[str]
    reported_results_removed: int


class ImportResult(Output):
    study_id: UUID
    agents_added: int
    # What was stored: every record of a new study; what an update added to its study.
    counts: dict[str, int]
    # What the import could not settle by itself (e.g. a registry record of a leukemia other than acute).
    warnings: list[str] = []
    # Set when a newer version of an imported registry record updated its study (200).
    update: RecordUpdate | None = None


class SourceRecordSummary(Output):
    """A registry record as received, one per version imported."""

    id: UUID
    study_id: UUID
    source: str
    version: str | None
    sha256: str
    size: int
    imported_at: datetime


class SourceRecordList(Output):
    items: list[SourceRecordSummary]
