"""A write transaction's statements on Postgres straight on the driver's connection.

A create sends six statements (the idempotency key's claim, the patient it refers to with its
study's lock, the INSERT, the key's stored response, the audit chain's head and
record). Through SQLAlchemy's Core execute each cost about three times its driver call (a
Connection, the execution context, the cursor adapter, the Result): eight such statements in a
session's transaction took 1.55 ms of CPU against 0.85 ms sent to the driver in the same
transaction (measured back to back on one pool, bench database of 1,000 patients).

The statements still run in the session's transaction, on its connection: the transaction is
begun here as SQLAlchemy's asyncpg adapter begins it (at the first statement), and the session
commits or rolls it back as before. A driver error is raised as SQLAlchemy would have raised it
(IntegrityError with the SQLSTATE, DBAPIError), so every handler sees what it saw before.

Only statements built once (module-level, or held by a repository) and whose compiled form needs
nothing of SQLAlchemy's execution context: every bound parameter given by the caller (no
Python-side column default to fill), no expanding IN list, a single row of parameters. Anything
else, and every statement on SQLite, goes through the connection's execute as before."""

import weakref
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Executable, exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import await_only
from sqlalchemy.util.concurrency import in_greenlet

from service.db import driver_reads
from service.db.driver_reads import CompiledRead

# Compiled statements per dialect (an engine's), per (statement, parameter names): bounded,
# since a caller passing statements built per request would otherwise grow it without end.
MAX_STATEMENTS = 1024
_compiled: "weakref.WeakKeyDictionary[Dialect, dict[tuple[Any, frozenset[str]], CompiledWrite | None]]" = (
    weakref.WeakKeyDictionary()
)


class Outcome:
    """What the callers read of a statement's result: its rows, how many it changed."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: Sequence[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        if len(self.rows) != 1:
            raise exc.NoResultFound("no row") if not self.rows else exc.MultipleResultsFound("rows")
        return self.rows[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


class CompiledWrite(CompiledRead):
    """A CompiledRead whose statement may carry values of its own (a bound constant)."""

    def __init__(self, compiled: SQLCompiler, dialect: Dialect, names: frozenset[str]) -> None:
        super().__init__(compiled, dialect)
        self.fixed = {
            name: compiled.binds[name].effective_value
            for name in compiled.positiontup or ()
            if name not in names
        }

    def arguments(self, params: dict[str, Any]) -> list[Any]:
        return super().arguments({**self.fixed, **params} if self.fixed else params)


def compiled_for_driver(
    dialect: Dialect, statement: Executable, names: frozenset[str]
) -> CompiledWrite | None:
    """`statement` compiled for asyncpg with parameters `names`, or None when it needs what only
    SQLAlchemy's execution gives (a column default to compute, a list to expand, a parameter
    nobody gave)."""
    statements = _compiled.setdefault(dialect, {})
    key = (statement, names)
    if key in statements:
        return statements[key]
    if len(statements) >= MAX_STATEMENTS:
        statements.clear()
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=sorted(names)))  # type: ignore[attr-defined]
    unnamed = [compiled.binds[name] for name in compiled.positiontup or () if name not in names]
    usable = (
        not compiled.literal_execute_params
        and not compiled.post_compile_params
        and not compiled.insert_prefetch
        and not compiled.update_prefetch
        and all(not bind.required and bind.callable is None for bind in unnamed)
    )
    statements[key] = CompiledWrite(compiled, dialect, names) if usable else None
    return statements[key]


def _adapted(connection: Connection | None) -> Any:
    """The asyncpg adapter under `connection` (typed Any: SQLAlchemy leaves it untyped), or None."""
    adapted = connection.connection.dbapi_connection if connection is not None else None
    return adapted if isinstance(adapted, AsyncAdapt_asyncpg_connection) else None


async def _run(adapted: Any, read: CompiledWrite, params: dict[str, Any]) -> Outcome:
    for observe in driver_reads.observers:
        observe(read.sql)
    arguments = read.arguments(params)
    driver: Any = adapted._connection
    try:
        if not adapted._started:
            # What the adapter does before its first statement: BEGIN, at the connection's
            # isolation level; the session's commit or rollback ends it.
            await adapted._start_transaction()
        if read.converters is None:
            await read.learn_types(driver)
        if read.columns:
            records = await driver.fetch(read.sql, *arguments)
            return Outcome([read.row(record) for record in records], len(records))
        status = await driver.execute(read.sql, *arguments)
        count = status.rpartition(" ")[2]
        return Outcome((), int(count) if count.isdigit() else -1)
    except Exception as error:
        raise _as_sqlalchemy_raises(adapted, read, arguments, error) from error


def _as_sqlalchemy_raises(
    adapted: Any, read: CompiledWrite, arguments: list[Any], error: Exception
) -> Exception:
    """`error` as SQLAlchemy raises it: the adapter's DB-API error (which keeps the SQLSTATE)
    wrapped in its sqlalchemy.exc class (IntegrityError, OperationalError, ...)."""
    dbapi = read.dialect.loaded_dbapi
    try:
        adapted._handle_exception(error)
    except dbapi.Error as translated:
        return exc.DBAPIError.instance(read.sql, arguments, translated, dbapi.Error, dialect=read.dialect)
    except Exception as other:  # not a database error: as it was
        return other
    return error  # pragma: no cover - _handle_exception always raises


async def execute(session: AsyncSession, statement: Executable, params: dict[str, Any]) -> Any:
    """`statement` with `params` in `session`'s transaction: on the driver where it can run
    there (an Outcome), else through the connection (a Result). Both answer first(), one(),
    scalar() and rowcount."""
    # The transaction's adapter, kept for the transaction: asking the session for its
    # connection takes a turn of its greenlet each time (a fifth of the driver path's CPU).
    transaction = session.sync_session.get_transaction()
    held = session.info.get(_HELD)
    if held is not None and transaction is not None and held[0] is transaction and transaction.is_active:
        adapted, dialect = held[1], held[2]
    else:
        connection = await session.connection()
        adapted, dialect = _adapted(connection.sync_connection), connection.dialect
        session.info[_HELD] = (session.sync_session.get_transaction(), adapted, dialect)
    read = compiled_for_driver(dialect, statement, frozenset(params)) if adapted else None
    if read is None:
        return await (await session.connection()).execute(statement, params)
    return await _run(adapted, read, params)


# session.info: (the session's transaction, its connection's asyncpg adapter or None, dialect).
_HELD = "driver_writes_connection"


def execute_sync(connection: Connection, statement: Executable, params: dict[str, Any]) -> Any:
    """`execute` for sync code that an async session runs in its greenlet (a commit hook); a
    sync session's connection (the command line's, SQLite's) executes as before."""
    adapted = _adapted(connection) if in_greenlet() else None
    read = compiled_for_driver(connection.dialect, statement, frozenset(params)) if adapted else None
    if read is None:
        return connection.execute(statement, params)
    return await_only(_run(adapted, read, params))
