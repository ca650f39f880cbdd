"""The import of a whole study, in steps that hold shared resources only briefly:
1. read the agent catalogue (a read transaction);
2. a document over 1 MiB is decoded and checked in a worker process first (no transaction, and
   not this process's interpreter lock: a 36 MB body does not slow the event loop; a refused one
   ends there);
3. the document's records are decoded, checked and laid out as rows in a worker thread, one
   document at a time;
4. the rows are written with multi-row statements in one write transaction (SQLite: this
   process's writer turn only now), the audit record chained at commit.
All or nothing: any problem is a 422 listing every refused record with its JSON pointer, and
nothing is stored. One study per source document: a unique index makes concurrent imports of
one document give one 201 and 409s."""

import contextlib
import ctypes
import gc
from collections.abc import Callable
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
from service.common.heavy import offload
from service.common.idempotency import remember, replay_or_claim
from service.common.repository import flush, get_visible
from service.db import models
from service.db.models import utcnow
from service.db.session import request_session
from service.errors import Conflict, DomainError, FieldError, RuleViolation
from service.exchange import study_document
from service.exchange.ctgov import record as clinicaltrials_gov
from service.exchange.ctgov import sources, updates
from service.exchange.ctgov.record import CtgovStudy
from service.exchange.schemas import ImportResult
from service.exchange.study_document import Document

MAX_LISTED_PROBLEMS = 1000
CHECK_IN_PROCESS_BYTES = 1024 * 1024


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


def study_json(body: bytes) -> Document:
    """A `POST /studies/import` body."""
    return Document.from_json(body)


def registry_json(body: bytes, allow_non_leukemia: bool = False) -> Document:
    """A `POST /studies/import/clinicaltrials-gov` body: an API v2 study record."""
    record = msgspec.json.decode(body, type=CtgovStudy)
    return Document.from_builtins(clinicaltrials_gov.to_document(record, allow_non_leukemia))


Verdict = tuple[str, Any]


def check(
    decoder: Callable[[bytes], Document], body: bytes, agents: dict[str, Any], now: datetime
) -> Verdict:
    """Decode and check a whole document, in a worker process (module-level, picklable in and
    out): a 36 MB document takes seconds of pure Python, which in this process would share the
    interpreter lock with the event loop. ("ok", None), or what refuses it; the rows stay there."""
    verdict, planned = laid_out(decoder, body, agents, now)
    if planned is not None:
        _drop(planned[1])
    return verdict


def laid_out(
    decoder: Callable[[bytes], Document], body: bytes, agents: dict[str, Any], now: datetime
) -> tuple[Verdict, tuple[Document, study_document.Plan] | None]:
    """`check`, in a worker process, returning an accepted document with its laid-out rows."""
    try:
        document = decoder(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return ("body", (type(exc) is msgspec.DecodeError, str(exc))), None
    except DomainError as exc:
        return ("rule", (exc.detail, exc.field)), None
    plan = _plan(document, agents, now)
    if plan.problems:
        return ("problems", [(p.pointer, p.message) for p in plan.problems]), None
    return ("ok", None), (document, plan)


def _refuse(verdict: Verdict) -> None:
    kind, detail = verdict
    if kind == "body":
        not_json, message = detail
        raise invalid_body(msgspec.DecodeError(message) if not_json else msgspec.ValidationError(message))
    if kind == "rule":
        raise RuleViolation(detail[0], field=detail[1])
    if kind == "problems":
        shown = [FieldError(message=message, pointer=pointer, source="body") for pointer, message in detail]
        more = len(shown) - MAX_LISTED_PROBLEMS
        raise ImportRejected(
            f"{len(shown)} record(s) refused; nothing was stored"
            + (f" (the first {MAX_LISTED_PROBLEMS} are listed)" if more > 0 else ""),
            errors=shown[:MAX_LISTED_PROBLEMS],
        )


async def import_document(
    request: Request[Any, Any, Any],
    state: State,
    body: bytes,
    decoder: Callable[[bytes], Document],
    idempotency_key: str | None,
) -> Response[ImportResult]:
    async with request_session(state, request, writing=False) as session:
        agents = await agent_ids_by_name(session)
    if len(body) > CHECK_IN_PROCESS_BYTES:
        # A large document is checked first in a worker process, where it cannot slow the event
        # loop; a refused one (the usual large body) never makes its rows here. Accepted, its
        # rows are laid out again here, in a thread (one document at a time per process): sending
        # hundreds of thousands of rows back from the worker would cost more than that.
        _refuse(await offload(check, decoder, body, agents, utcnow()))
        document = await decode(body, decoder, state.import_planning)
        plan = await anyio.to_thread.run_sync(
            _plan, document, agents, utcnow(), limiter=state.import_planning
        )
        if plan.problems:
            _refuse(("problems", [(p.pointer, p.message) for p in plan.problems]))
    else:
        # A smaller one is decoded and laid out in a worker process, rows and all: laid out in a
        # thread here it held the interpreter, and so the event loop, while other clients waited
        # (a patient read's p99 went to 0.3 s while two clients imported 500-patient studies).
        verdict, planned = await offload(laid_out, decoder, body, agents, utcnow())
        _refuse(verdict)
        assert planned is not None  # an accepted document always comes with its rows
        document, plan = planned
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
                study = await get_visible(session, models.Study, stored, for_update=True)
                if study is None or not document.from_registry:
                    raise AlreadyImported(
                        f"a study from source document {source!r} is already stored ({stored})",
                        field="document",
                    )
                # Another version of a registry record: its study is brought up to it, with history.
                try:
                    updated = await updates.apply(session, study, plan, document, body)
                except IntegrityError:
                    # The same version stored meanwhile by a concurrent import, or an agent of
                    # the same name: nothing of this update is stored.
                    raise Conflict("the record conflicts with data stored meanwhile; retry") from None
                return await _answer(request, session, updated, 200, idempotency_key)
        try:
            await study_document.write(session, plan)
            if document.from_registry and source:
                session.add(sources.new_row(plan.study_id, source, body, document.registry_version))
                await flush(session)
        except IntegrityError as exc:
            # Another import of the same document committed first (the unique source document:
            # "studies.source_document" on SQLite, "uq_studies_source_document" on Postgres), or
            # another request added an agent this document adds: nothing of this one is stored.
            if source and "source_document" in str(exc.orig):
                raise AlreadyImported(
                    f"a study from source document {source!r} was stored meanwhile", field="document"
                ) from None
            raise Conflict(
                "the document conflicts with data stored meanwhile (an agent of the same name added by "
                "another request); nothing was stored: retry"
            ) from None
        await anyio.to_thread.run_sync(_drop, plan)  # the rows are written: free them off the loop
        result = ImportResult(
            study_id=plan.study_id,
            agents_added=plan.agents_added,
            counts=plan.counts,
            warnings=list(document.warnings),
        )
        return await _answer(request, session, result, 201, idempotency_key)


async def _answer(
    request: Request[Any, Any, Any],
    session: Any,
    result: ImportResult,
    status_code: int,
    idempotency_key: str | None,
) -> Response[ImportResult]:
    response = Response(
        result, status_code=status_code, headers={"Location": f"/api/v1/studies/{result.study_id}"}
    )
    if idempotency_key:
        await remember(session, request.scope["user"].name, idempotency_key, response)
    return response
