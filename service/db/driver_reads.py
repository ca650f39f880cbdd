"""Reading one record by id on Postgres straight on the driver's connection.

SQLAlchemy's Core execute of a compiled, cached statement still costs a patient read about as
much CPU as the rest of the request together: a Connection object, the AUTOCOMMIT isolation set
and reset, the execution context, the cursor adapter and the Result (0.27 ms against 0.13 ms
for the same statement on the driver, measured back to back on one connection pool). Here a
statement is compiled once per process; each read takes a pooled connection from the engine's
own pool (same size, timeouts and recycling as every other request), runs the SQL text on
asyncpg, whose statement cache holds it prepared, and hands back rows with the same values
SQLAlchemy would have produced (its result processors, where a column type has one).

Only what is safe without a transaction: one statement, read at READ COMMITTED, nothing left on
the connection. SQLite keeps the engine path (its driver runs in a thread either way)."""

from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

# Who wants to see every statement sent here (bench/statements.py counts them, as it counts the
# engine's with its cursor event).
observers: list[Callable[[str], None]] = []


class CompiledRead:
    """A statement compiled for asyncpg once: its SQL text, its parameters' order and converters,
    and a row type with attribute access (what the repositories read of a result row). A read's
    here; a write's too (service.db.driver_writes), whose rows, if any, are not read."""

    def __init__(self, compiled: SQLCompiler, dialect: Dialect) -> None:
        self.sql: str = compiled.string
        binds: dict[str, Any] = dict(compiled._bind_processors)
        self.params: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, binds.get(name)) for name in compiled.positiontup or ()
        ]
        self.columns = [(entry[0], entry[3]) for entry in compiled._result_columns]
        self.row_type: Any = namedtuple("DriverRow", [key for key, _ in self.columns])  # type: ignore[misc]
        self.dialect = dialect
        # Result converters need the column types the server reports: set at the first read.
        self.converters: list[tuple[int, Callable[[Any], Any]]] | None = None

    def arguments(self, params: dict[str, Any]) -> list[Any]:
        return [params[name] if bind is None else bind(params[name]) for name, bind in self.params]

    async def learn_types(self, connection: Any) -> None:
        converters: list[tuple[int, Callable[[Any], Any]]] = []
        if not self.columns:  # no result columns declared (an INSERT, SQL text): nothing to convert
            self.converters = converters
            return
        prepared = await connection.prepare(self.sql)
        for position, ((_, type_), attribute) in enumerate(
            zip(self.columns, prepared.get_attributes(), strict=True)
        ):
            convert = type_._cached_result_processor(self.dialect, attribute.type.oid)
            if convert is not None:
                converters.append((position, convert))
        self.converters = converters

    def row(self, record: Any) -> Any:
        if not self.converters:
            return self.row_type._make(record.values())
        values = list(record.values())
        for position, convert in self.converters:
            values[position] = convert(values[position])
        return self.row_type._make(values)


class DriverReads:
    """The compiled reads of one engine (a Postgres one), and running them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._compiled: dict[Select[Any], CompiledRead] = {}

    def compiled(self, statement: Select[Any]) -> CompiledRead:
        read = self._compiled.get(statement)
        if read is None:
            dialect = self._engine.dialect
            read = self._compiled[statement] = CompiledRead(statement.compile(dialect=dialect), dialect)
        return read

    async def rows(self, statement: Select[Any], params: dict[str, Any]) -> Sequence[Any]:
        """`statement`'s rows for `params`. Errors are the driver's own (service.errors maps a
        lost connection or a timeout to 503); the connection goes back to the pool, or is
        discarded after an error, since a statement that failed may have left it broken."""
        read = self.compiled(statement)
        for observe in observers:
            observe(read.sql)
        pooled = await self._engine.raw_connection()
        try:
            connection: Any = pooled.driver_connection
            if read.converters is None:
                await read.learn_types(connection)
            records = await connection.fetch(read.sql, *read.arguments(params))
        except BaseException:
            pooled.invalidate()
            raise
        finally:
            await greenlet_spawn(pooled.close)
        return [read.row(record) for record in records]


def driver_reads(engine: AsyncEngine) -> DriverReads | None:
    """Reads on the driver for a Postgres engine; None for SQLite."""
    return DriverReads(engine) if engine.dialect.name == "postgresql" else None
