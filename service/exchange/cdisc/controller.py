"""A study's CDISC datasets (SDTM and ADaM) as Dataset-JSON v1.1: one operation per media type,
so that a generated client gets one body type per operation."""

from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.response import Stream

from service.auth.middleware import requires
from service.common.repository import get_visible
from service.data_cuts import reading
from service.db import models
from service.errors import NotFound
from service.exchange import snapshot
from service.exchange.cdisc import datasets, document
from service.exchange.cdisc.schemas import DatasetEntry, DatasetJson
from service.exchange.export_json import consistent_snapshot

READ = requires("rows")  # patient-level rows, as the study export
STANDARDS = {"DM": "SDTM", "AE": "SDTM", "RS": "SDTM", "DS": "SDTM"}
DESCRIPTION = (
    "SDTM DM, AE (grade in AETOXGR, MedDRA preferred-term code in AEPTCD), RS (overall response OVRLRESP and "
    "MRD status MRDSTS), DS (deaths and last known alive as disposition events; relapse, progression, transplant "
    "and GVHD as other events); ADaM ADSL, ADTTE (PARAMCD OS, RFS, EFS, GRFS, CRD; AVAL in days; CNSR 0 = event; "
    "EVNTDESC/CNSDTDSC; STARTDY, ADY and the source domain and variable — exactly the rows of "
    "`GET .../time-to-event`, so a patient whose event has no day is left out, never censored), ADAE, ADRS. "
    "Timing in study days (`--DY`); USUBJID is the study's first registry id (else its id) and the subject "
    "code. Only the patients the request may read. Taken as a snapshot like the study export (`Repr-Digest`, "
    "`Content-Length`; at most `EXPORT_BUILDS` at once per process, 429 beyond)."
)


async def _content(
    open_session: Callable[[], Any], study_id: UUID, name: datasets.DatasetName, ndjson: bool
) -> AsyncIterator[bytes]:
    async with open_session() as session, session.begin():
        await consistent_snapshot(session)
        study = await get_visible(session, models.Study, study_id)
        if study is None:
            return
        dataset, data = await datasets.build(session, study, name)
    if ndjson:
        for chunk in document.as_ndjson(dataset, data):
            yield chunk
    else:
        yield document.as_json(dataset, data)


class DatasetController(Controller):
    path = "/studies/{id:uuid}/datasets"
    tags = ["Exchange"]
    guards = [READ]
    parameters = reading.PARAMETER
    before_request = reading.enter_hook  # type: ignore[assignment]

    @get(
        "/",
        operation_id="listStudyDatasets",
        summary="The study's CDISC datasets (SDTM, ADaM) and where to get each",
        description=DESCRIPTION,
    )
    async def list_datasets(
        self, request: Request[Any, Any, Any], state: State, id: FromPath[UUID]
    ) -> Response[list[DatasetEntry]]:
        async with reading.sessions_for(state, request)() as session:
            if await get_visible(session, models.Study, id) is None:
                raise NotFound(f"no study with id {id}")
        base = f"/api/v1/studies/{id}/datasets"
        cut = reading.active(request)
        on_cut = f"?data_cut={cut.id}" if cut is not None else ""
        entries = [
            DatasetEntry(
                name=name,
                label=datasets.LABELS[name],
                standard=STANDARDS.get(name, "ADaM"),
                json=f"{base}/{name}{on_cut}",
                ndjson=f"{base}/{name}/ndjson{on_cut}",
            )
            for name in datasets.BUILDERS
        ]
        return Response(entries, headers=reading.version_header(request))

    @get(
        "/{name:str}",
        operation_id="getStudyDataset",
        summary="One CDISC dataset of the study as Dataset-JSON v1.1",
        description=DESCRIPTION,
        responses={
            200: ResponseSpec(
                data_container=DatasetJson, description="Dataset-JSON v1.1", generate_examples=False
            )
        },
        media_type="application/json",
    )
    async def get_dataset(
        self,
        request: Request[Any, Any, Any],
        state: State,
        id: FromPath[UUID],
        name: FromPath[datasets.DatasetName],
    ) -> Stream:
        return await _send(request, state, id, name, ndjson=False)

    @get(
        "/{name:str}/ndjson",
        operation_id="getStudyDatasetNdjson",
        summary="One CDISC dataset of the study as Dataset-JSON v1.1 NDJSON",
        description="The first line holds the metadata (columns, records), each further line one row. "
        + DESCRIPTION,
        media_type="application/x-ndjson",
    )
    async def get_dataset_ndjson(
        self,
        request: Request[Any, Any, Any],
        state: State,
        id: FromPath[UUID],
        name: FromPath[datasets.DatasetName],
    ) -> Stream:
        return await _send(request, state, id, name, ndjson=True)


async def _send(
    request: Request[Any, Any, Any], state: State, study_id: UUID, name: datasets.DatasetName, ndjson: bool
) -> Stream:
    open_session = reading.sessions_for(state, request)
    with state.export_slots:
        async with open_session() as session:
            if await get_visible(session, models.Study, study_id) is None:
                raise NotFound(f"no study with id {study_id}")
        taken = await snapshot.take(_content(open_session, study_id, name, ndjson))
    suffix = "ndjson" if ndjson else "json"
    return Stream(
        taken.chunks(),
        media_type="application/x-ndjson" if ndjson else "application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name.lower()}.{suffix}"',
            **taken.headers(),
            **reading.version_header(request),
        },
    )
