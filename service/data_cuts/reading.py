"""Answering on a cut: a request that names `data_cut=<id>` reads the cut's frozen database
(service.data_cuts.databases) instead of the live one, for every session it opens
(service.db.session.request_session, the exports' own sessions), and its clock stops at the
cut (service.data_cuts.clock: an export's `exported_at` is the cut's time), so the same query
on the same cut gives the same bytes however the live data changed. Who may use a cut is
decided on the live data: whoever may read all of its studies (service.data_cuts.service)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.datastructures import State
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.common.request_checks import check_request
from service.data_cuts import clock, service
from service.data_cuts.databases import CutDatabases
from service.db.models import as_utc

QUERY = "data_cut"
STATE_KEY = "data_cut"
DESCRIPTION = (
    "Answer on this data cut (`POST /data-cuts`) instead of the live data: exactly as the registry "
    "answered when the cut was taken, byte for byte the same on every request, whatever changed since "
    "(only the data-version fields differ from the live answer of that moment)."
)
# Declared on every analysis, evidence, reconciliation, plot and export operation.
PARAMETER = {QUERY: QueryParameter(name=QUERY, annotation=UUID, required=False, description=DESCRIPTION)}


@dataclass(frozen=True, slots=True)
class ActiveCut:
    id: UUID
    sha256: str
    audit_records: int
    audit_head: str
    created_at: datetime
    sessions: async_sessionmaker[AsyncSession]

    @property
    def version(self) -> str:
        return f"cut:{self.id}:{self.sha256}"


def _cut_id(request: Request[Any, Any, Any]) -> UUID | None:
    raw = request.query_params.get(QUERY)
    if raw is None:
        return None
    try:
        return UUID(raw)
    except ValueError:
        message = f"Query parameter '{QUERY}' is not a data cut id (a UUID)"
        raise ValidationException(
            message, extra=[{"message": message, "key": QUERY, "source": "query"}]
        ) from None


async def enter(request: Request[Any, Any, Any]) -> ActiveCut | None:
    """Make the cut the request names (if any) the data it reads; 404 if the caller cannot see it."""
    clock.FROZEN_AT.set(None)  # left by an earlier request on this task (in-process clients)
    cut_id = _cut_id(request)
    if cut_id is None:
        return None
    state = request.app.state
    async with state.session_factory() as session:
        cut = await service.find(session, cut_id)

    async def read_content() -> bytes:
        async with state.session_factory() as session:
            return (await service.find(session, cut_id, with_content=True)).content

    databases: CutDatabases = state.data_cut_databases
    sessions = await databases.sessions(cut.id, cut.sha256, read_content)
    active = ActiveCut(
        cut.id, cut.sha256, cut.audit_records, cut.audit_head, as_utc(cut.created_at), sessions
    )
    request.state[STATE_KEY] = active
    clock.FROZEN_AT.set(active.created_at)
    return active


async def enter_hook(request: Request[Any, Any, Any]) -> None:
    """The before-request hook of the exports: the app's checks, then the cut."""
    await check_request(request)
    await enter(request)


def active(request: Request[Any, Any, Any]) -> ActiveCut | None:
    cut: ActiveCut | None = request.state.get(STATE_KEY)
    return cut


def sessions_for(state: State, request: Request[Any, Any, Any]) -> Callable[[], Any]:
    """The session factory a request reads with: its cut's, or the live database's."""
    cut = active(request)
    return cut.sessions if cut is not None else state.session_factory


def version_header(request: Request[Any, Any, Any]) -> dict[str, str]:
    """`Data-Version` of an export made on a cut (a live export is a snapshot of its own)."""
    cut = active(request)
    return {"Data-Version": cut.version} if cut is not None else {}
