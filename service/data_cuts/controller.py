"""`/data-cuts`: take, list, read and retire cuts; their frozen content."""

import base64
import importlib.metadata
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from litestar.response import Stream

from service.auth.middleware import requires
from service.data_cuts import analyses, clock, content, package, service
from service.data_cuts.databases import CutDatabases
from service.data_cuts.schemas import DataCut, DataCutCreate, DataCutList, RetireRequest
from service.db.models import as_utc
from service.db.session import request_session
from service.exchange import snapshot

ROWS = requires("rows")


class DataCutController(Controller):
    path = "/data-cuts"
    tags = ["Data cuts"]

    @post(
        guards=[requires("global curator")],
        operation_id="createDataCut",
        summary="Freeze the data as it stands now: a data cut",
        description="Stores, unchangeably, the export document of each study it covers (`study_ids`; default every "
        "study) as `GET /studies/{id}/export` gives it now — each study read in one consistent transaction —, "
        "compressed, with its SHA-256 and the audit chain's head (records and last hash) read when the cut began, "
        "who took it and when. `require_locked=true` refuses it (409) unless every study is locked. Built like an "
        "export: a bounded number at once per process (429 with `Retry-After` beyond). Audited.",
    )
    async def create_data_cut(
        self, request: Request[Any, Any, Any], state: State, data: JSONBody[DataCutCreate]
    ) -> Response[DataCut]:
        with state.export_slots:
            async with request_session(state, request, writing=False) as session:
                study_ids, locked, head = await service.plan(session, data)
            # Built outside the write transaction: a large cut holds no writer's turn.
            built = await content.build(state.session_factory, data.label, study_ids)
        async with request_session(state, request, writing=True) as session:
            cut = await service.store(
                session, data, study_ids, locked, head, built, request.scope["user"].name
            )
        return Response(cut, status_code=201, headers={"Location": f"/api/v1/data-cuts/{cut.id}"})

    @get(
        guards=[ROWS],
        operation_id="listDataCuts",
        summary="The data cuts the caller may read",
        description="Oldest first. A cut is visible to whoever may read every patient row of each study it covers.",
    )
    async def list_data_cuts(self, request: Request[Any, Any, Any], state: State) -> DataCutList:
        async with request_session(state, request, writing=False) as session:
            return DataCutList(items=await service.listed(session))

    @get(
        "/{cut_id:uuid}",
        guards=[ROWS],
        operation_id="getDataCut",
        summary="One data cut: what it covers, its digest and the audit head at the cut",
    )
    async def get_data_cut(
        self, request: Request[Any, Any, Any], state: State, cut_id: FromPath[UUID]
    ) -> DataCut:
        async with request_session(state, request, writing=False) as session:
            return service.to_read(await service.find(session, cut_id))

    @get(
        "/{cut_id:uuid}/content",
        guards=[ROWS],
        operation_id="getDataCutContent",
        summary="The frozen content of a data cut, byte for byte",
        description="`{format, format_version, label, studies: [study export documents]}`; its SHA-256 is the cut's "
        "`sha256` (also in `Repr-Digest` and the `ETag`), whatever changed in the registry since.",
        media_type="application/json",
    )
    async def get_data_cut_content(
        self, request: Request[Any, Any, Any], state: State, cut_id: FromPath[UUID]
    ) -> Stream:
        async with request_session(state, request, writing=False) as session:
            cut = await service.find(session, cut_id, with_content=True)
        digest = base64.b64encode(bytes.fromhex(cut.sha256)).decode()
        return Stream(
            content.chunks(cut.content),
            media_type="application/json",
            headers={
                "Content-Length": str(cut.size),
                "Repr-Digest": f"sha-256=:{digest}:",
                "ETag": f'"{cut.sha256}"',
                "Content-Disposition": f'attachment; filename="data-cut-{cut.id}.json"',
            },
        )

    @get(
        "/{cut_id:uuid}/package",
        guards=[ROWS],
        operation_id="getDataCutPackage",
        summary="The release package of a data cut: an RO-Crate zip",
        description="`ro-crate-metadata.json` (RO-Crate 1.3 and the Process Run Crate profile: the cut as the root "
        "dataset with its identifier, time, licence (`DATA_CUT_LICENSE`), creators from its studies' sponsors or "
        "institutions and their publications, and the audit head at the cut as its `version`), `data-cut.json` "
        "(the frozen content, whose SHA-256 is the cut's), `export/` (each study's JSON document and CSV files on "
        "the cut) and `analyses/` (every analysis, evidence, reconciliation or plot answered on the cut with "
        "`data_cut=`, each described as a CreateAction with its parameters). Every file's SHA-256 is in the "
        "metadata; members are dated by the cut's time. Built like an export: a bounded number at once per "
        "process (429 with `Retry-After` beyond).",
        media_type="application/zip",
    )
    async def get_data_cut_package(
        self, request: Request[Any, Any, Any], state: State, cut_id: FromPath[UUID]
    ) -> Stream:
        with state.export_slots:
            async with request_session(state, request, writing=False) as session:
                cut = await service.find(session, cut_id, with_content=True)
                kept = await analyses.kept(session, cut_id)

            async def frozen() -> bytes:
                return cut.content

            databases: CutDatabases = state.data_cut_databases
            sessions = await databases.sessions(cut.id, cut.sha256, frozen)
            async with sessions() as session:
                studies = await service.frozen_studies(session, cut)
            token = clock.FROZEN_AT.set(as_utc(cut.created_at))
            try:
                built = package.stream(
                    cut,
                    sessions,
                    studies,
                    kept,
                    state.data_cut_license,
                    importlib.metadata.version("leukemia-registry"),
                    # The registry as the instrument of the analyses: its API documentation here.
                    f"{str(request.base_url).rstrip('/')}/docs",
                )
                taken = await snapshot.take(built)
            finally:
                clock.FROZEN_AT.reset(token)
        return Stream(
            taken.chunks(),
            media_type="application/zip",
            headers={
                **taken.headers(),
                "Content-Disposition": f'attachment; filename="data-cut-{cut.id}.zip"',
                "Data-Version": f"cut:{cut.id}:{cut.sha256}",
            },
        )

    @post(
        "/{cut_id:uuid}/retire",
        guards=[requires("admin")],
        operation_id="retireDataCut",
        summary="Retire a data cut (admins): it stays readable, marked retired, and the retirement is audited",
        description="A cut is never changed or deleted; 409 when already retired.",
        status_code=200,
    )
    async def retire_data_cut(
        self,
        request: Request[Any, Any, Any],
        state: State,
        cut_id: FromPath[UUID],
        data: JSONBody[RetireRequest],
    ) -> DataCut:
        async with request_session(state, request, writing=True) as session:
            session.info.setdefault("reason", data.reason)
            return await service.retire(session, cut_id, data.reason, request.scope["user"].name)
