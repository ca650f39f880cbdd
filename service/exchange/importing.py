"""The import of a whole study, in three steps that hold shared resources only briefly:
1. read the agent catalogue (a read transaction);
2. decode and check every record and lay out the rows, in a worker thread (no transaction,
   the event loop free: a 36 MB body does not stall other requests);
3. write the rows with multi-row statements in one write transaction (SQLite: this process's
   writer turn only now), the audit record chained at commit.
All or nothing: any problem is a 422 listing every refused record with its JSON pointer, and
nothing is stored. One study per source document: a unique index makes concurrent imports of
one document give one 201 and 409s."""

import contextlib
import ctypes
import gc
from datetime import datetime
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, Response
from litestar.datastructures import State
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from service.agents.service import agent_ids_by_name
from service.common.bodies import invalid_body
from service.common.idempotency import remember, replay_or_claim
from service.db import models
from service.db.models import utcnow
from service.db.session import request_session
from service.errors import Conflict, DomainError, FieldError
from service.exchange import study_document
from service.exchange.schemas import ImportResult
from service.exchange.study_document import Document

MAX_LISTED_PROBLEMS = 1000


class ImportRejected(DomainError):
    slug = "import-rejected"
    title = "The study document breaks data rules; nothing was stored"


class AlreadyImported(Conflict):
    slug = "already-imported"


async def decode(body: bytes, decoder: Any, limiter: anyio.CapacityLimiter) -> Any:
    """`decoder(body)` in a worker thread; a malformed envelope is a 400 naming the field."""
    try:
        return await anyio.to_thread.run_sync(decoder, body, limiter=limiter)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise invalid_body(exc) from None


def _plan(document: Document, agents: dict[str, Any], now: datetime) -> study_document.Plan:
    # A large document makes millions of objects at once: the cyclic collector would walk them
    # all, again and again, holding the interpreter lock (and so the event loop) for a second or
    # more each time. They hold no cycles (refcounting frees them), so it rests meanwhile.
    collecting = gc.isenabled()
    gc.disable()
    try:
        plan = study_document.plan(document, agents, now)
        if plan.problems:
            _drop(plan)  # freed here, in the worker thread, not on the event loop
        return plan
    finally:
        if collecting:
            gc.enable()


def release_memory() -> None:
    """Give the heap the rows of a large document occupied back to the system (glibc keeps
    freed memory otherwise, and the process would stay hundreds of MB larger)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _drop(plan: study_document.Plan) -> None:
    """Free the plan's rows a batch at a time: freeing half a million dicts in one call would
    hold the interpreter lock (and the event loop) for a third of a second."""
    for rows in plan.rows.values():
        while rows:
            del rows[-1000:]
    plan.rows.clear()
    release_memory()


async def import_document(
    request: Request[Any, Any, Any], state: State, document: Document, idempotency_key: str | None
) -> Response[ImportResult]:
    async with request_session(state, request, writing=False) as session:
        agents = await agent_ids_by_name(session)
    # Documents are checked one at a time per process: four 36 MB bodies at once would otherwise
    # hold four sets of rows in memory, and four threads would take turns with the event loop.
    plan = await anyio.to_thread.run_sync(_plan, document, agents, utcnow(), limiter=state.import_planning)
    if plan.problems:
        shown = [FieldError(message=p.message, pointer=p.pointer, source="body") for p in plan.problems]
        more = len(shown) - MAX_LISTED_PROBLEMS
        raise ImportRejected(
            f"{len(shown)} record(s) refused; nothing was stored"
            + (f" (the first {MAX_LISTED_PROBLEMS} are listed)" if more > 0 else ""),
            errors=shown[:MAX_LISTED_PROBLEMS],
        )
    source = document.source_document
    async with request_session(state, request, writing=True) as session:
        replay = await replay_or_claim(request, session, idempotency_key)
        if replay is not None:
            return replay
        if source:
            stored = await session.scalar(
                select(models.Study.id).where(col(models.Study.source_document) == source)
            )
            if stored is not None:
                raise AlreadyImported(
                    f"a study from source document {source!r} is already stored ({stored})", field="document"
                )
        try:
            await study_document.write(session, plan)
        except IntegrityError:
            # Another import of the same document committed first (the unique source document),
            # or added an agent of the same name meanwhile: nothing of this one is stored.
            if source:
                raise AlreadyImported(
                    f"a study from source document {source!r} was stored meanwhile", field="document"
                ) from None
            raise Conflict("the document conflicts with data stored meanwhile; retry") from None
        await anyio.to_thread.run_sync(_drop, plan)  # the rows are written: free them off the loop
        result = ImportResult(study_id=plan.study_id, agents_added=plan.agents_added, counts=plan.counts)
        response = Response(result, status_code=201, headers={"Location": f"/api/v1/studies/{plan.study_id}"})
        if idempotency_key:
            await remember(session, request.scope["user"].name, idempotency_key, response)
    return response
