"""`/data-cuts`: take, list, read and retire cuts; their frozen content."""

import base64
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from litestar.response import Stream

from service.auth.middleware import requires
from service.data_cuts import content, service
from service.data_cuts.schemas import DataCut, DataCutCreate, DataCutList, RetireRequest
from service.db.session import request_session

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
