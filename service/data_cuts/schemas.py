from datetime import datetime
from typing import Annotated
from uuid import UUID

from msgspec import Meta

from service.common.schemas import Input, Output
from service.common.types import NO_NUL

Label = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL, examples=["ASH 2027 abstract"])]


class DataCutCreate(Input):
    label: Label
    # Default: every study the caller may read.
    study_ids: Annotated[list[UUID], Meta(min_length=1, max_length=500)] | None = None
    note: Annotated[str, Meta(max_length=2000, pattern=NO_NUL)] | None = None
    # Refuse the cut (409) unless every study it covers is locked (POST /studies/{id}/lock).
    require_locked: bool = False


class RetireRequest(Input):
    reason: Annotated[str, Meta(min_length=1, max_length=500, pattern=NO_NUL)]


class DataCut(Output):
    id: UUID
    label: str
    note: str | None
    study_ids: list[UUID]
    # SHA-256 (hex) and length of the frozen content, as GET /data-cuts/{id}/content returns it.
    sha256: str
    size: int
    # The audit chain at the cut: its number of records and the last record's hash.
    audit_records: int
    audit_head: str
    created_at: datetime
    created_by: str
    studies_locked: bool
    retired_at: datetime | None = None
    retired_by: str | None = None
    retire_reason: str | None = None


class DataCutList(Output):
    items: list[DataCut]
