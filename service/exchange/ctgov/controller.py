"""The registry records a study was imported from, version by version, as received."""

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from sqlmodel import col, select

from service.auth.middleware import requires
from service.common.repository import get_visible
from service.db import models
from service.db.session import request_session
from service.errors import NotFound
from service.exchange.ctgov import sources
from service.exchange.ctgov.record import CtgovStudy
from service.exchange.schemas import SourceRecordList, SourceRecordSummary

READ = requires("rows")  # whoever may read the study's rows


def _summary(row: models.SourceRecord) -> SourceRecordSummary:
    return SourceRecordSummary(
        id=row.id,
        study_id=row.study_id,
        source=row.source,
        version=row.version,
        sha256=row.sha256,
        size=row.size,
        imported_at=models.as_utc(row.imported_at),
    )


async def _visible_study(session: Any, study_id: UUID) -> None:
    if await get_visible(session, models.Study, study_id) is None:
        raise NotFound(f"no study with id {study_id}")


class SourceRecordController(Controller):
    tags = ["Exchange"]

    @get(
        "/studies/{id:uuid}/source-records",
        guards=[READ],
        operation_id="listStudySourceRecords",
        summary="The registry records a study was imported from, one per version",
        description="Oldest first. Each ClinicalTrials.gov import stores the record as received; a newer version "
        "of it (`POST /studies/import/clinicaltrials-gov`) updates the study and is stored beside the earlier "
        "ones, so that what the registry said at each version stays readable. Empty for a study not imported "
        "from a registry record.",
    )
    async def list_source_records(
        self, request: Request[Any, Any, Any], state: State, id: FromPath[UUID]
    ) -> SourceRecordList:
        async with request_session(state, request, writing=False) as session:
            await _visible_study(session, id)
            return SourceRecordList(items=[_summary(row) for row in await sources.history(session, id)])

    @get(
        "/studies/{id:uuid}/source-records/{record_id:uuid}",
        guards=[READ],
        operation_id="getStudySourceRecord",
        summary="One registry record as received, byte for byte",
        description="The record the provenance of the study's imported fields and reported results points into "
        "(their `location` is a JSON pointer in it; the latest version for current records). Its SHA-256 is the "
        "`ETag`.",
        media_type="application/json",
        responses={
            200: ResponseSpec(
                data_container=CtgovStudy,
                description="The record as the registry gave it",
                generate_examples=False,
            )
        },
    )
    async def get_source_record(
        self, request: Request[Any, Any, Any], state: State, id: FromPath[UUID], record_id: FromPath[UUID]
    ) -> Response[bytes]:
        async with request_session(state, request, writing=False) as session:
            await _visible_study(session, id)
            row = await session.scalar(
                select(models.SourceRecord).where(
                    col(models.SourceRecord.id) == record_id, col(models.SourceRecord.study_id) == id
                )
            )
            if row is None:
                raise NotFound(f"study {id} has no source record {record_id}")
            return Response(
                sources.content(row), media_type="application/json", headers={"ETag": f'"{row.sha256}"'}
            )
