"""Structs shared by every area: the base classes, provenance, markers and paging."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import Meta

from service.common.types import LongText, Name, Percent, ShortText
from service.common.vocab import MarkerStatus, Sample


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body: unknown fields are an error, never silently dropped."""


class Output(msgspec.Struct, kw_only=True):
    """Base of every response body."""


class TableCell(Input):
    """A table cell of the source: the table, the row by its label (its first cell) or by its
    number counted from the first data row below the column's header, and the column by its
    header."""

    table: Annotated[str, Meta(pattern=r"^Table [0-9]{1,3}$", examples=["Table 2"])]
    row: Annotated[Name, Meta(examples=["Age (y)"])] | Annotated[int, Meta(ge=1, le=10_000)]
    column: Name


class Provenance(Input):
    """Where a curated fact comes from, and what the curator had to decide about it. `quote` is
    verbatim; for a value read from a table, `cell` locates it and `quote` is what the cell prints."""

    source_document: Name
    location: ShortText
    quote: LongText
    cell: TableCell | None = None
    note: LongText | None = None


class Marker(Input):
    """An immunophenotype marker: percent positive where printed, else the qualitative status."""

    marker: Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^[^\x00]*$")]
    percent_positive: Percent | None = None
    status: MarkerStatus | None = None
    sample: Sample | None = None


class Stamped(Output):
    """Server-owned fields present on every stored record."""

    id: UUID
    version: int
    created_at: datetime
    updated_at: datetime


ProvenanceList = Annotated[list[Provenance], Meta(max_length=50)]
MarkerList = Annotated[list[Marker], Meta(max_length=100)]
ShortTextList = Annotated[list[ShortText], Meta(max_length=100)]


def page_struct(item_type: Any, name: str) -> type[msgspec.Struct]:
    """A concrete `{items, total, limit, offset}` struct (named, so the OpenAPI component is too)."""
    return msgspec.defstruct(
        name,
        [("items", list[item_type]), ("total", int), ("limit", int), ("offset", int)],
        kw_only=True,
        bases=(Output,),
    )


def as_column_values(data: msgspec.Struct) -> dict[str, Any]:
    """Struct fields as column values: nested structs and lists become JSON-ready builtins."""
    values: dict[str, Any] = {}
    for name in data.__struct_fields__:
        value = getattr(data, name)
        if value is msgspec.UNSET:
            continue
        if isinstance(value, (msgspec.Struct, list, dict)):
            value = msgspec.to_builtins(value)
        values[name] = value
    return values
