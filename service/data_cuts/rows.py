"""The frozen content of a cut: every row of the studies it covers, with its id, table by table.

Rows, not export documents: an analysis refers to studies, arms, sites and patients by id, so
answering on a cut exactly as the live service answered at the cut needs the same ids and the
same stored values (derived columns included, as they were computed then). The document is
canonical — tables in foreign-key order, rows in primary-key order, values as JSON builtins — so
the same data always gives the same bytes and SHA-256:

    {"format": "leukemia-registry/data-cut", "format_version": 2, "label": …,
     "schema_revision": <migration head>, "tables": {"<table>": {"columns": […], "rows": [[…], …]}, …}}

`load` writes such a document into a new SQLite file with the registry's tables (from the same
models the migrations are checked against), which service.data_cuts.databases opens read-only."""

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import Column, Table, create_engine, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from service.db import models
from service.db.migrate import head_revision
from service.exchange import study_document
from service.exchange.export_json import consistent_snapshot

FORMAT = "leukemia-registry/data-cut"
FORMAT_VERSION = 2
BATCH = 2000


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


# Foreign-key order, as a study document is written, then the records that refer to patients
# or studies besides: what a registry record was read from, and curators' links between patients.
TABLES: tuple[Table, ...] = tuple(
    _table(m) for m in (*study_document.ORDER, models.SourceRecord, models.PatientLink)
)


def _selection(table: Table, study_ids: list[UUID]) -> Any:
    """The rows of `table` that belong to the studies (every agent: the catalogue is shared)."""
    patients = select(col(models.Patient.id)).where(col(models.Patient.study_id).in_(study_ids))
    where: Any
    c = table.c
    if table.name == "agents":
        where = None
    elif table.name == "studies":
        where = c.id.in_(study_ids)
    elif "study_id" in c:
        where = c.study_id.in_(study_ids)
    elif table.name == "arm_agents":
        where = c.arm_id.in_(select(col(models.Arm.id)).where(col(models.Arm.study_id).in_(study_ids)))
    elif table.name == "treatment_components":
        treatments = select(col(models.Treatment.id)).where(col(models.Treatment.patient_id).in_(patients))
        where = c.treatment_id.in_(treatments)
    elif table.name == "patient_links":  # a link between two patients both in the cut
        where = c.patient_a_id.in_(patients) & c.patient_b_id.in_(patients)
    else:
        where = c.patient_id.in_(patients)
    query = select(table)
    if where is not None:
        query = query.where(where)
    return query.order_by(*table.primary_key.columns)


async def stream(open_session: Callable[[], Any], label: str, study_ids: list[UUID]) -> AsyncIterator[bytes]:
    """The document, written as it is read, in one consistent read transaction."""
    encode = msgspec.json.Encoder().encode
    opening = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "label": label,
        "schema_revision": head_revision(),
    }
    yield encode(opening)[:-1] + b',"tables":{'
    session: AsyncSession
    async with open_session() as session, session.begin():
        await consistent_snapshot(session)
        for n, table in enumerate(TABLES):
            columns = [str(column.name) for column in table.columns]
            yield (
                (b"," if n else b"")
                + encode(str(table.name))
                + b':{"columns":'
                + encode(columns)
                + b',"rows":['
            )
            first = True
            result = await session.stream(_selection(table, study_ids).execution_options(yield_per=BATCH))
            async for rows in result.partitions():
                chunk = b",".join(encode(msgspec.to_builtins(tuple(row))) for row in rows)
                yield chunk if first else b"," + chunk
                first = False
            yield b"]}"
    yield b"}}"


class Content(msgspec.Struct):
    format: str
    format_version: int
    tables: dict[str, "FrozenTable"]


class FrozenTable(msgspec.Struct):
    columns: list[str]
    rows: list[list[Any]]


class UnreadableCut(ValueError):
    """The content is not a cut this code can load (an earlier format)."""


def _converter(column: Column[Any]) -> Callable[[Any], Any] | None:
    """JSON builtin -> the column's Python value (UUID, date, datetime, bytes); None: as it is."""
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return None
    if kind in (str, int, float, bool, dict, list):
        return None
    return lambda value: None if value is None else msgspec.convert(value, kind, strict=False)


def _values(table: Table, frozen: "FrozenTable") -> Iterable[dict[str, Any]]:
    converters = [(name, _converter(table.c[name])) for name in frozen.columns]
    for row in frozen.rows:
        yield {
            name: (convert(value) if convert else value)
            for (name, convert), value in zip(converters, row, strict=True)
        }


def load(document: bytes, path: Path) -> None:
    """Write the cut's rows into a new SQLite file at `path` (blocking: run in a thread)."""
    try:
        content = msgspec.json.decode(document, type=Content)
    except msgspec.ValidationError as exc:
        raise UnreadableCut(f"the cut's content cannot be loaded ({exc})") from None
    if (content.format, content.format_version) != (FORMAT, FORMAT_VERSION):
        raise UnreadableCut(
            f"the cut was frozen as {content.format} version {content.format_version}, from which analyses "
            "cannot be recomputed; take a new cut"
        )
    engine = create_engine(f"sqlite:///{path}")
    try:
        models.metadata.create_all(engine, tables=list(TABLES))
        with engine.begin() as connection:
            for table in TABLES:
                frozen = content.tables.get(table.name)
                if frozen is None or not frozen.rows:
                    continue
                rows = list(_values(table, frozen))
                for start in range(0, len(rows), BATCH):
                    connection.execute(table.insert(), rows[start : start + BATCH])
    finally:
        engine.dispose()
    # Read only from now on, and small on disk.
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA journal_mode=DELETE")
