"""The async engine and the one-transaction-per-request session dependency."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from sqlalchemy import Executable, Result, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

from service.common.deidentification import check_free_text
from service.db.driver_reads import DriverReads
from service.errors import Busy, FieldError, RuleViolation
from service.settings import Settings

WRITE = {"sqlite_begin": "IMMEDIATE"}
# session.info: rows a write's transaction read by id, {(table name, id): row}. A later check of
# the same row in the same transaction (a child's patient: its existence, then its study and
# site for the write's authorization) reads it here instead of sending the statement again.
ROWS_READ = "rows_read_by_id"
AUDIT_KEY_OPTION = "audit_hmac_key"


def create_engine(settings: Settings) -> AsyncEngine:
    """An engine for SQLite (foreign keys on, WAL, writers queue on the write lock) or Postgres
    (server statement timeout, client connect/command/pool timeouts)."""
    url = make_url(settings.database_url)
    kwargs: dict[str, Any] = {}
    file_backed = False
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            file_backed = True
        kwargs["connect_args"] = {"timeout": settings.sqlite_busy_timeout_ms / 1000}
        # Every session ends its transaction itself (commit, or rollback on close), so the
        # pool's extra rollback on return would only cost a trip to the driver's thread.
        kwargs["pool_reset_on_return"] = None
    elif url.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {
            "server_settings": {"statement_timeout": str(settings.statement_timeout_ms)},
            "timeout": settings.db_connect_timeout_s,
            "command_timeout": settings.db_command_timeout_s,
        }
        # No ping per checkout (a round trip on every request): a connection the server closed
        # fails its request once (503, see service.errors) and is discarded with the pool's
        # other connections of that generation; connections are renewed after 30 minutes.
        kwargs["pool_recycle"] = 1800
    if file_backed or url.get_backend_name() == "postgresql":
        kwargs["pool_size"] = settings.db_pool_size
        kwargs["max_overflow"] = settings.db_pool_size // 2
        # A request waiting longer than this for a pooled connection gets 503, on both databases.
        kwargs["pool_timeout"] = settings.db_pool_timeout_s
    if settings.audit_hmac_key:
        # Read by the audit trail from its connection (service.audit.trail.hmac_key).
        kwargs["execution_options"] = {AUDIT_KEY_OPTION: settings.audit_hmac_key}
    engine = create_async_engine(url, json_deserializer=_json_loads, **kwargs)
    if url.get_backend_name() == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
            if file_backed:
                # Readers never block the writer, nor the writer the readers.
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()
            # The driver's own transaction handling starts transactions late and turns the first
            # SAVEPOINT into the outer transaction (its RELEASE would commit): let SQLAlchemy
            # emit BEGIN itself, as its SQLite documentation recommends.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Any) -> None:
            # A writer takes the write lock up front (BEGIN IMMEDIATE) and so waits its turn for
            # up to busy_timeout; a deferred transaction that reads and then writes would be
            # refused at once (SQLITE_BUSY) when another writer got there first. Sent straight
            # to the driver: one trip to aiosqlite's thread instead of a cursor's three.
            mode = connection.get_execution_options().get("sqlite_begin", "")
            driver = connection.connection.driver_connection
            await_only(driver.execute("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN"))

    return engine


def _json_loads(text: str) -> Any:
    """JSON columns decoded by msgspec (several times faster than the json module on every
    patient's findings, markers and provenance); a value only the json module reads (NaN,
    Infinity, written by an older release) still decodes."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


async def begin_write(session: AsyncSession) -> None:
    """Start `session`'s transaction as a writer (SQLite: BEGIN IMMEDIATE). Postgres begins at
    the first statement either way: taking the connection here would only cost a turn of the
    session's greenlet."""
    if session.bind is not None and session.bind.dialect.name == "sqlite":
        await session.connection(execution_options=WRITE)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def plain_read_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine of plain reads of records (one item, a page): on Postgres without BEGIN and
    COMMIT. At READ COMMITTED every statement reads its own snapshot either way, so the
    transaction bought nothing but two round trips (reading a patient took three instead of
    one). Not for reads that stream rows (Postgres needs a transaction for a server-side cursor)
    or need one snapshot across statements (exports, data cuts: REPEATABLE READ in their own
    transaction). On SQLite a read transaction holds one snapshot for all of its statements,
    and stays (PlainReads)."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


class PlainReads:
    """What a plain read needs of a session — its connection, `execute` and `scalar` of Core
    statements — on a pooled connection without an ORM session: creating, beginning, committing
    and closing a session cost a patient read more CPU than its statement (a third of the
    request, profiled). Reads go from result rows to response structs and never load ORM
    objects, so nothing here needs an identity map.

    The connection is taken at the first statement, as a session takes it: Litestar does not
    close a dependency whose sibling failed (a malformed filter), and a connection taken
    earlier would stay out of the pool — on SQLite inside its transaction."""

    def __init__(self, engine: AsyncEngine, driver: DriverReads | None = None) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        # Postgres: one-record reads skip the engine's execute (service.db.driver_reads).
        self.driver = driver

    async def connection(self) -> AsyncConnection:
        if self._connection is None:
            connection = await self._engine.connect()
            if self._engine.dialect.name != "postgresql":
                await connection.begin()  # SQLite: one snapshot for the page and what it includes
            self._connection = connection
        return self._connection

    async def execute(self, statement: Executable, params: dict[str, Any] | None = None) -> Result[Any]:
        return await (await self.connection()).execute(statement, params)

    async def scalar(self, statement: Executable, params: dict[str, Any] | None = None) -> Any:
        return await (await self.connection()).scalar(statement, params)

    async def close(self) -> None:
        """Back to the pool; closing ends SQLite's read transaction (a rollback: nothing was written)."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()


# What reading records takes: a request's session, or PlainReads.
Reads = AsyncSession | PlainReads


@asynccontextmanager
async def plain_reads(engine: AsyncEngine, driver: DriverReads | None = None) -> AsyncIterator[PlainReads]:
    reads = PlainReads(engine, driver)
    try:
        yield reads
    finally:
        await reads.close()


@asynccontextmanager
async def request_session(
    state: State, request: Request[Any, Any, Any], writing: bool
) -> AsyncIterator[AsyncSession]:
    """A transaction for `request`: committed when the block ends, rolled back if it raises; a
    writer's takes its turn first. The session knows who is acting and why, for the audit trail."""
    # A request on a data cut reads the cut's frozen database (service.data_cuts.reading).
    cut = request.state.get("data_cut")
    factory: async_sessionmaker[AsyncSession] = cut.sessions if cut is not None else state.session_factory
    # Only a write records why; a read ignores the header rather than refusing it.
    reason = change_reason(request) if writing else None
    # SQLite has a single writer: this process's writers take turns here, in order, instead of
    # all polling SQLite's lock through its busy-wait backoff (sleeps of up to 100 ms each).
    # Other processes (the CLI, a second server) still wait on the busy timeout.
    turn = (
        writer_turn(state.sqlite_writers, state.sqlite_write_wait_s)
        if writing and state.sqlite_writers is not None
        else nullcontext()
    )
    async with turn, factory() as session, session.begin():
        if writing:
            await begin_write(session)
        identity = request.scope.get("user")
        if identity is not None:
            session.info["actor"] = (identity.name, identity.actor_role)
        if reason:
            session.info["reason"] = reason
        yield session


async def provide_session(state: State, request: Request[Any, Any, Any]) -> AsyncIterator[AsyncSession]:
    """One transaction per request (a writer's for every method but GET, HEAD and OPTIONS)."""
    async with request_session(state, request, request.method not in SAFE_METHODS) as session:
        yield session


@asynccontextmanager
async def read_session(state: State, request: Request[Any, Any, Any]) -> AsyncIterator[Reads]:
    """What a handler that reads records with plain statements reads through (PlainReads); a
    write method still gets a writer's transaction, a read of a data cut the cut's session."""
    if request.method not in SAFE_METHODS or request.state.get("data_cut") is not None:
        async with request_session(state, request, request.method not in SAFE_METHODS) as session:
            yield session
        return
    async with plain_reads(state.plain_read_engine, state.driver_reads) as reads:
        yield reads


async def provide_list_read_session(
    state: State, request: Request[Any, Any, Any], filters: NamedDependency[Any]
) -> AsyncIterator[Reads]:
    """read_session as a list's dependency, resolved after the list's filters. Two dependencies
    of one level Litestar resolves in an anyio task group (two tasks, their contexts and the
    group: an eighth of a 50-item page's CPU, profiled); one after the other they are awaited
    in turn. The filters are built from the query alone, so nothing waits on the other."""
    async with read_session(state, request) as reads:
        yield reads


class WriterBusy(Busy):
    """SQLite: this process's writers stayed ahead of the request for longer than the wait allowed."""

    title = "Other writes hold the database"


@asynccontextmanager
async def writer_turn(lock: asyncio.Lock, wait_s: float) -> AsyncIterator[None]:
    """This process's turn to write (SQLite has one writer), waited for at most `wait_s`: a
    request that cannot get its turn answers 503 instead of waiting past its client, whose
    write would otherwise be committed after the client had given up."""
    try:
        await asyncio.wait_for(lock.acquire(), wait_s)
    except TimeoutError:
        raise WriterBusy(f"other writes held the database for {wait_s:g} s; try again shortly") from None
    try:
        yield
    finally:
        lock.release()


SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MAX_REASON = 500


def change_reason(request: Request[Any, Any, Any]) -> str | None:
    """X-Change-Reason as UTF-8 text (HTTP hands header bytes over as Latin-1), at most 500
    characters and free of direct identifiers: it is kept forever in the append-only trail."""
    raw = request.headers.get("x-change-reason")
    if raw is None:
        return None
    try:
        reason = raw.encode("latin-1").decode("utf-8").strip()
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise ValidationException("X-Change-Reason is not valid UTF-8.") from None
    if len(reason) > MAX_REASON:
        raise ValidationException(f"X-Change-Reason is longer than {MAX_REASON} characters.")
    try:
        check_free_text({"X-Change-Reason": reason})
    except RuleViolation as exc:  # it names the field as if in the body
        where = FieldError(message=exc.detail, field="X-Change-Reason", source="header")
        raise RuleViolation(exc.detail, errors=[where]) from None
    return reason or None


# Handlers take the request's session as `db_session: DbSession`.
DbSession = NamedDependency[AsyncSession]
# ... and those that only read records with plain statements as `db_session: ReadSession`, one of
# `Reads` (typed Any here: Litestar checks a dependency against its type with msgspec, which
# cannot check a union of two classes).
ReadSession = NamedDependency[Any]
