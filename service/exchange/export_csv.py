"""One study as a zip of CSV files, one per table, for R, SAS and spreadsheets.

Each table keeps its ids, so files join as the database does (`patients.id` =
`treatments.patient_id`, …). Lists and objects (provenance, markers, conditions) are JSON text in
their cell. `time_to_event_{endpoint}.csv` and `excluded_{endpoint}.csv` hold the
ADTTE-shaped rows of every endpoint (OS, RFS, EFS, GRFS, CRD; CNSR 1 = censored) and the patients
each leaves out, with the reason. `agents.csv` lists the agents the study uses, and
`data_dictionary.csv` every file's columns with their type, unit and code system. The zip is
written as it is read (no seeking: sizes follow each file), a batch of rows at a time."""

import csv
import io
import json
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Any, get_args
from uuid import UUID

import msgspec
from sqlmodel import col, select

from service.access.scope import current_scope
from service.analytics.estimands.endpoints import Endpoint
from service.analytics.estimands.groups import GroupSpec
from service.analytics.schemas import Exclusion, TimeToEventRow
from service.analytics.survival.analysis import time_to_event
from service.data_cuts import clock
from service.db import models
from service.db.models import as_utc
from service.exchange.data_dictionary import struct_entries, table_entries
from service.exchange.export_json import consistent_snapshot

BATCH = 2000
ENDPOINTS: tuple[Endpoint, ...] = get_args(Endpoint)
# Kept by the database for the analyses, not data anyone entered.
INTERNAL = {"last_recorded_day", "subject_key", "name_key"}


class ZipSink(io.RawIOBase):
    """Collects what zipfile writes, for the stream to take away."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):  # UTC on both databases (SQLite hands back naive times)
        value = as_utc(value)
    return msgspec.to_builtins(value)


def _columns(model: Any) -> list[str]:
    return [c.name for c in model.__table__.columns if c.name not in INTERNAL]


def _tables(study_id: UUID) -> list[tuple[str, Any, Any]]:
    """(file, model, query) for each table, rows of this study only, in creation order."""
    # The patients the request may read (a site grant's sites: service.access.scope).
    patients = select(models.Patient.id).where(current_scope().study_patients(study_id))
    treatments = select(models.Treatment.id).where(col(models.Treatment.patient_id).in_(patients))
    arms = select(models.Arm.id).where(models.Arm.study_id == study_id)

    def rows_of(model: Any) -> Any:
        return select(*model.__table__.columns)

    return [
        ("study.csv", models.Study, rows_of(models.Study).where(col(models.Study.id) == study_id)),
        ("arms.csv", models.Arm, rows_of(models.Arm).where(models.Arm.study_id == study_id)),
        (
            "arm_agents.csv",
            models.ArmAgent,
            rows_of(models.ArmAgent).where(col(models.ArmAgent.arm_id).in_(arms)),
        ),
        # the agents of its arms and of its patients' treatments
        (
            "agents.csv",
            models.Agent,
            rows_of(models.Agent).where(
                col(models.Agent.id).in_(
                    select(models.ArmAgent.agent_id).where(col(models.ArmAgent.arm_id).in_(arms))
                )
                | col(models.Agent.id).in_(
                    select(models.TreatmentComponent.agent_id).where(
                        col(models.TreatmentComponent.treatment_id).in_(treatments)
                    )
                )
            ),
        ),
        ("sites.csv", models.Site, rows_of(models.Site).where(models.Site.study_id == study_id)),
        ("patients.csv", models.Patient, rows_of(models.Patient).where(col(models.Patient.id).in_(patients))),
        (
            "treatments.csv",
            models.Treatment,
            rows_of(models.Treatment).where(col(models.Treatment.patient_id).in_(patients)),
        ),
        (
            "treatment_components.csv",
            models.TreatmentComponent,
            rows_of(models.TreatmentComponent).where(
                col(models.TreatmentComponent.treatment_id).in_(treatments)
            ),
        ),
        (
            "adverse_events.csv",
            models.AdverseEvent,
            rows_of(models.AdverseEvent).where(col(models.AdverseEvent.patient_id).in_(patients)),
        ),
        (
            "outcomes.csv",
            models.Outcome,
            rows_of(models.Outcome).where(col(models.Outcome.patient_id).in_(patients)),
        ),
        (
            "reported_results.csv",
            models.ReportedResult,
            rows_of(models.ReportedResult).where(models.ReportedResult.study_id == study_id),
        ),
    ]


def _ordered(model: Any, query: Any) -> Any:
    keys = [col(c) for c in model.__table__.primary_key.columns]
    return query.order_by(*keys)


def zip_member(name: str) -> zipfile.ZipInfo:
    """A member dated by the answer's clock (on a data cut, the cut's time: the same bytes each time)."""
    member = zipfile.ZipInfo(name, date_time=clock.now().timetuple()[:6])
    member.compress_type = zipfile.ZIP_DEFLATED
    return member


async def stream_zip(open_session: Callable[[], Any], study_id: UUID) -> AsyncIterator[bytes]:
    sink = ZipSink()
    async with open_session() as session, session.begin():
        await consistent_snapshot(session)
        with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, model, query in _tables(study_id):
                columns = _columns(model)
                with archive.open(zip_member(name), mode="w", force_zip64=True) as member:
                    text = io.TextIOWrapper(member, encoding="utf-8", newline="")
                    writer = csv.writer(text)
                    writer.writerow(columns)
                    # Rows, not ORM objects (see export_json._rows), fetched a batch at a time.
                    result = await session.stream(_ordered(model, query).execution_options(yield_per=BATCH))
                    async for rows in result.partitions(BATCH):
                        writer.writerows([_cell(row._mapping[c]) for c in columns] for row in rows)
                        text.flush()
                        yield sink.take()
                    text.flush()
                    text.detach()
                yield sink.take()
            for endpoint in ENDPOINTS:
                analysis = await time_to_event(
                    session, study_id, endpoint=endpoint, time_unit="days", group_by=GroupSpec("arm")
                )
                _write(archive, f"time_to_event_{endpoint.lower()}.csv", TimeToEventRow, analysis.rows)
                _write(archive, f"excluded_{endpoint.lower()}.csv", Exclusion, analysis.excluded)
                yield sink.take()
            _dictionary(archive, study_id)
    yield sink.take()


def _dictionary(archive: zipfile.ZipFile, study_id: UUID) -> None:
    entries = [e for name, model, _ in _tables(study_id) for e in table_entries(name, model, _columns(model))]
    for endpoint in ENDPOINTS:
        entries += struct_entries(f"time_to_event_{endpoint.lower()}.csv", TimeToEventRow)
        entries += struct_entries(f"excluded_{endpoint.lower()}.csv", Exclusion)
    with archive.open(zip_member("data_dictionary.csv"), mode="w") as member:
        text = io.TextIOWrapper(member, encoding="utf-8", newline="")
        writer = csv.DictWriter(text, fieldnames=["file", "column", "type", "unit", "code_system"])
        writer.writeheader()
        writer.writerows(entries)
        text.flush()
        text.detach()


def _write(archive: zipfile.ZipFile, name: str, struct: Any, records: Iterable[Any]) -> None:
    fields = [f.name for f in msgspec.structs.fields(struct)]
    with archive.open(zip_member(name), mode="w", force_zip64=True) as member:
        text = io.TextIOWrapper(member, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(fields)
        writer.writerows([_cell(v) for v in msgspec.to_builtins(record).values()] for record in records)
        text.flush()
        text.detach()
