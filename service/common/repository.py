"""Create, read, update, delete and list for one table, with hooks for each area's rules.

Each area subclasses `Repository` and overrides only what differs: the rules a write must
satisfy (`check`), how rows become response structs (`to_read`), and what depends on a row
(`dependants`). Handlers never touch ORM rows."""

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cache, cached_property
from types import SimpleNamespace
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

import msgspec
from pydantic.fields import FieldInfo
from sqlalchemy import DateTime, Row, Select, bindparam, delete, func
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, select

from service.access.scope import current_scope
from service.access.writes import authorize_write
from service.audit import trail
from service.common.deidentification import check_free_text_async
from service.common.filters import Condition
from service.common.preconditions import check_if_match
from service.common.schemas import as_column_values
from service.db import driver_writes
from service.db.driver_reads import DriverReads
from service.db.models import Record, as_utc, utcnow
from service.db.page_statements import PAGE_TOTAL, PAGE_VERSION, page_select, page_statements
from service.db.session import ROWS_READ, PlainReads, Reads
from service.errors import Conflict, NotFound, UnknownReference
from service.locks.refusal import STUDY_LOCK, remember_lock, with_study_lock

M = TypeVar("M", bound=SQLModel)


def row_values(row: Any) -> dict[str, Any]:
    """Column values of an ORM row or a Core result row; naive datetimes (SQLite keeps no
    offset) are read as UTC."""
    items: Iterable[tuple[Any, Any]] = (
        row._mapping.items()
        if isinstance(row, Row)
        else ((key, getattr(row, key)) for key in column_keys(row.__table__))
    )
    return {key: as_utc(value) if isinstance(value, datetime) else value for key, value in items}


@cache
def column_keys(table: Any) -> tuple[str, ...]:
    """The keys of `table`'s columns, read once: iterating a table's column collection and each
    column's key cost a create's row as much as the rest of row_values."""
    return tuple(column.key for column in table.columns)


async def flush(session: AsyncSession) -> None:
    """Flush, turning a constraint the services did not foresee into a 409 or a 422 (see
    `constraint_error`). Nothing to flush (a create's row went in by a Core INSERT) costs nothing:
    the flush itself would first take a turn of the session's greenlet."""
    if not (session.new or session.dirty or session.deleted):
        return
    try:
        await session.flush()
    except IntegrityError as exc:
        raise constraint_error(exc) from exc


def constraint_error(exc: IntegrityError) -> Conflict | UnknownReference:
    """A constraint the services did not foresee, as a 409 — or, when a record the change refers
    to was deleted after the service checked it (a child created while its patient's study is
    deleted by another request), as the 422 of an unknown reference."""
    if foreign_key_violation(exc):
        return UnknownReference("a record the change refers to was deleted meanwhile; nothing was stored")
    return Conflict("The change conflicts with existing data (a uniqueness or reference rule).")


def foreign_key_violation(exc: IntegrityError) -> bool:
    """A row written that refers to one no longer there (Postgres SQLSTATE 23503 on an insert or
    update; the same code on a delete means the row is still referred to, a 409). SQLite's single
    writer checks and writes in one transaction, so the race does not arise there."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code == "23503" and "insert or update on table" in str(exc.orig)


async def fetch_page(
    session: Reads,
    table: Any,
    columns: Sequence[Any],
    where: Sequence[Any],
    order: Sequence[Any],
    limit: int,
    offset: int,
) -> tuple[Sequence[Any], int]:
    """One page of `columns` and the total matching `where`, in one statement: the count is a
    scalar subquery, which the database answers from an index where it can. A second statement
    only for a page past the end, which has no row to carry the total. Only the rows in the
    request's scope (service.access.scope) are counted and listed."""
    visible = current_scope().table_condition(table)
    plan = (
        None
        if visible is not None
        else page_statements.statement(table, columns, where, order, limit, offset)
    )
    driver: DriverReads | None = None
    if plan is not None:
        statements, params = plan.statements, plan.params
        if isinstance(session, PlainReads):
            # Live data only: a total is kept with the version of the live database it was
            # counted on (service.db.page_statements).
            page_statements.known_total(plan)
            # Only shared statements go to the driver, which keeps each one compiled.
            driver = session.driver
    else:
        where = [*where, visible] if visible is not None else where
        statements, params = page_select(table, columns, where, order, limit, offset), {}
    rows: Sequence[Any]
    if driver is not None:
        rows = await driver.rows(statements.page, params)
    else:
        rows = (await (await session.connection()).execute(statements.page, params)).all()
    if rows:
        total = int(getattr(rows[0], PAGE_TOTAL))
        if plan is not None and plan.statements.versioned and isinstance(session, PlainReads):
            page_statements.remember_total(plan, int(getattr(rows[0], PAGE_VERSION)), total)
        return rows, total
    if not offset:
        return rows, 0
    if driver is not None:
        return rows, int((await driver.rows(statements.total, params))[0][0])
    return rows, int(await session.scalar(statements.total, params) or 0)


class Repository(Generic[M]):
    model: ClassVar[type[Record]]
    read_type: ClassVar[Any]
    label: ClassVar[str]
    # name -> (child model, its foreign key column); deleted first when `cascade` is asked for.
    children: ClassVar[dict[str, Any]] = {}

    @cached_property
    def table_name(self) -> str:
        name: str = self.model.__table__.name  # type: ignore[attr-defined]
        return name

    @cached_property
    def _by_id(self) -> Select[Any]:
        return row_by_id(self.model.__table__)  # type: ignore[attr-defined]

    async def fetch(self, session: AsyncSession, id: UUID, for_update: bool = False) -> Any:
        # FOR UPDATE (Postgres) serialises writers of one record, so of N concurrent PATCHes with
        # the same If-Match exactly one sees its version still current.
        row = await get_visible(session, self.model, id, for_update)
        if row is None:
            raise NotFound(f"{self.label} {id} does not exist")
        return row

    @cached_property
    def _time_columns(self) -> frozenset[str]:
        table = self.model.__table__  # type: ignore[attr-defined]
        return frozenset(c.key for c in table.columns if isinstance(c.type, DateTime))

    def values_of(self, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """row_values of many result rows of this table: the keys read once, and only the time
        columns looked at (a 50-item page spent a third of its time in row_values)."""
        if not rows or not hasattr(rows[0], "_fields"):  # ORM objects
            return [row_values(row) for row in rows]
        keys = rows[0]._fields  # a result row, or a driver read's (service.db.driver_reads)
        times = [key for key in keys if key in self._time_columns]
        values = [dict(zip(keys, row, strict=True)) for row in rows]
        for value in values:
            for key in times:
                if value[key] is not None:
                    value[key] = as_utc(value[key])
        return values

    async def to_read(self, session: Reads, rows: Sequence[Any]) -> list[Any]:
        return msgspec.convert(self.values_of(rows), list[self.read_type])  # type: ignore[name-defined]

    async def read(self, session: Reads, id: UUID) -> Any:
        # Reads go from result rows to response structs: no ORM objects, no identity map, and
        # one statement object per repository (its compiled form and cache key are reused).
        statement = self._by_id
        visible = current_scope().table_condition(self.model.__table__)  # type: ignore[attr-defined]
        if visible is None and isinstance(session, PlainReads) and session.driver is not None:
            rows = await session.driver.rows(statement, {"id": id})
            row = rows[0] if rows else None
        else:
            if visible is not None:
                statement = statement.where(visible)
            row = (await (await session.connection()).execute(statement, {"id": id})).first()
        if row is None:
            raise NotFound(f"{self.label} {id} does not exist")
        return (await self.to_read(session, [row]))[0]

    async def list(
        self,
        session: Reads,
        where: Sequence[Condition],
        order: Sequence[Any],
        limit: int,
        offset: int,
    ) -> tuple[list[Any], int]:
        table = self.model.__table__  # type: ignore[attr-defined]
        rows, count = await fetch_page(session, table, list(table.columns), where, order, limit, offset)
        return await self.to_read(session, rows), count

    async def check(self, session: AsyncSession, values: dict[str, Any], existing: Any | None) -> None:
        """Raise a DomainError when `values` (the full record after the write) breaks a rule:
        the rules of the record itself (`rules`) and those that read other rows."""
        self.rules(values)

    def rules(self, values: dict[str, Any]) -> None:
        """The rules a record obeys on its own (no other row read): the bulk import applies
        these to every record before it writes anything."""

    async def save_children(self, session: AsyncSession, row: Any, data: msgspec.Struct) -> None:
        """Write rows owned by `row` that the body carries (e.g. treatment components)."""

    def columns(self, data: msgspec.Struct) -> dict[str, Any]:
        return as_column_values(data)

    @cached_property
    def _insert(self) -> Any:
        return self.model.__table__.insert()  # type: ignore[attr-defined]

    @cached_property
    def _defaults(self) -> tuple[tuple[str, Callable[[], Any] | None, FieldInfo], ...]:
        """(name, factory, field) of the table's fields that have a default: a factory to call
        (a new id, the time), called here directly, or a value pydantic gives. Pydantic's
        `get_default` inspects a factory's signature on every call (26 → 8 µs per row)."""
        table = self.model.__table__  # type: ignore[attr-defined]
        return tuple(
            (name, info.default_factory, info)  # type: ignore[misc]  # none takes the data
            for name, info in self.model.model_fields.items()
            if name in table.c and not info.is_required()
        )

    def new_row(self, values: dict[str, Any]) -> dict[str, Any]:
        """The row a create inserts: `values` and every other column's default, as the ORM model
        would fill them in (a new id, version 1, the times)."""
        row = {
            name: factory() if factory is not None else info.get_default()
            for name, factory, info in self._defaults
            if name not in values
        }
        row.update(values)
        return row

    async def create(self, session: AsyncSession, data: msgspec.Struct) -> Any:
        values = self.columns(data)
        await check_free_text_async(values)
        await self.check(session, values, None)
        await authorize_write(session, self.table_name, values, None)
        # One INSERT of the row's values rather than an ORM object flushed by the unit of work:
        # building and flushing the object was a third of a create's CPU (profiled).
        inserted = self.new_row(values)
        try:
            await driver_writes.execute(session, self._insert, inserted)
        except IntegrityError as exc:
            raise constraint_error(exc) from exc
        # What the hooks below read of the row: its columns as attributes (row_values).
        row = SimpleNamespace(__table__=self.model.__table__, **inserted)  # type: ignore[attr-defined]
        await self.save_children(session, row, data)
        await flush(session)
        created = (await self.to_read(session, [row]))[0]
        await trail.record(
            session, "create", self.label, row.id, trail.changes_between(None, msgspec.to_builtins(created))
        )
        return created

    async def update(
        self, session: AsyncSession, id: UUID, patch: msgspec.Struct, if_match: str | None = "*"
    ) -> Any:
        row = await self.fetch(session, id, for_update=True)
        check_if_match(if_match, row.version)
        before = msgspec.to_builtins((await self.to_read(session, [row]))[0])
        changes = self.columns(patch)
        await check_free_text_async(changes)
        after = {**row_values(row), **changes}
        await self.check(session, after, row)
        await authorize_write(session, self.table_name, after, row_values(row))
        for key, value in changes.items():
            setattr(row, key, value)
        row.version += 1
        row.updated_at = utcnow()
        await flush(session)
        await self.save_children(session, row, patch)
        await flush(session)
        updated = (await self.to_read(session, [row]))[0]
        await trail.record(
            session, "update", self.label, row.id, trail.changes_between(before, msgspec.to_builtins(updated))
        )
        return updated

    async def dependants(self, session: AsyncSession, row: Any) -> dict[str, int]:
        """How many records of each kind refer to `row` (delete refuses them unless cascading)."""
        counts: dict[str, int] = {}
        for name, (child, fk) in self.children.items():
            n = await session.scalar(select(func.count()).select_from(child).where(fk == row.id))
            if n:
                counts[name] = int(n)
        return counts

    async def delete_dependants(self, session: AsyncSession, row: Any) -> None:
        for child, fk in self.children.values():
            await session.execute(delete(child).where(fk == row.id))

    async def delete(
        self, session: AsyncSession, id: UUID, cascade: bool, if_match: str | None = "*"
    ) -> None:
        row = await self.fetch(session, id, for_update=True)
        await authorize_write(session, self.table_name, None, row_values(row))
        check_if_match(if_match, row.version)
        counts = await self.dependants(session, row)
        if counts and not cascade:
            listed = ", ".join(f"{n} {name}" for name, n in counts.items())
            raise Conflict(
                f"{self.label} {id} still has dependants ({listed}); delete them first or pass cascade=true"
            )
        before = msgspec.to_builtins((await self.to_read(session, [row]))[0])
        await self.delete_dependants(session, row)
        await session.delete(row)
        await flush(session)
        await trail.record(session, "delete", self.label, row.id, trail.changes_between(before, None))


async def get_visible(session: AsyncSession, model: Any, id: Any, for_update: bool = False) -> Any:
    """The ORM row `id` of `model` if it is in the request's scope, else None."""
    visible = current_scope().table_condition(model.__table__)
    if visible is None:
        return await session.get(model, id, with_for_update=for_update or None)
    statement = select(model).where(model.id == id, visible)
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalars().first()


@cache
def row_by_id(table: Any) -> Select[Any]:
    """Every column of `table`'s row `:id`: one statement object per table, so its compiled form
    and cache key are reused."""
    return core_select(*table.columns).where(table.c.id == bindparam("id"))


async def require(session: AsyncSession, model: type[SQLModel], id: UUID, field: str, label: str) -> Any:
    """The referenced row (a result row: its columns as attributes), or a 422 naming the body
    field that referenced it (a row outside the request's scope does not exist for it)."""
    table = model.__table__  # type: ignore[attr-defined]
    statement = _required(table)
    visible = current_scope().table_condition(table)
    if visible is None:  # the shared statement: on Postgres, on the driver
        row = (await driver_writes.execute(session, statement, {"id": id})).first()
    else:
        row = (await (await session.connection()).execute(statement.where(visible), {"id": id})).first()
    if row is None:
        raise UnknownReference(f"{label} {id} (given in `{field}`) does not exist", field=field)
    session.info.setdefault(ROWS_READ, {})[(table.name, id)] = row
    if table.name == "patients":
        remember_lock(session, row.study_id, getattr(row, STUDY_LOCK))
    return row


@cache
def _required(table: Any) -> Select[Any]:
    """row_by_id; a patient's with its study's lock, which the write's authorization checks next
    (service.locks.refusal)."""
    statement = row_by_id(table)
    return with_study_lock(statement, table.c.study_id) if table.name == "patients" else statement
