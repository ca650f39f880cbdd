"""The page statement of a list, built once per shape of its filters and reused.

A list's filters are new SQL expressions on every request (`col(Patient.diagnosis) == "AML"`), so
SQLAlchemy built the page's SELECT of every column and walked it for its cache key each time,
before finding the compiled form it already had: at 1,000 patients that was the largest cost of
a 50-item page (cProfile of `bench/cpu_per_request.py page`). Here a page's shape — which
columns each filter compares and how, the order, the table and the columns read — picks one
statement whose values are named bound parameters; the request only supplies the values. The
statement object is the same each time, so its cache key is computed once and, on Postgres, it
can run on the driver (service.db.driver_reads) as a one-record read does.

Only filters of the form `column <op> value` are recognised; a page with any other condition
(a LIKE with an escape, an IN list, a function, a subquery) is built as before, and so is one
whose caller's scope adds a condition.

A page of one study (a filter `study_id = value`) also reads the study's data version, its last
audit record (service.caching.versions), in the same statement as its rows. Counting the total
was what grew with the study (a 50-item page of a 100,000-patient study: 2.8 ms of its count
against 0.6 ms of its rows, EXPLAIN ANALYZE on Postgres), and paging through one list asks the
same total again and again; so the total is kept with the version it was counted at, and the
next page of the same filters sends both: the database counts again only when the version
differs (a CASE whose other branch is never run). Every committed write to a study's records
writes an audit record of that study, in its transaction and in the chain's commit order, so an
unchanged version is unchanged data; the version and the count are read in one statement, from
one snapshot."""

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Column, Integer, Select, bindparam, case, func, literal_column
from sqlalchemy import select as core_select
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, UnaryExpression
from sqlalchemy.sql.operators import eq

from service.db.models import AuditRecord

# Shapes are few (a handful of filters per list, each on or off, times the sort keys), but a
# bound keeps a caller who tries every combination from growing the cache without end.
MAX_SHAPES = 2048

# The label of the page's total, beside the columns (not underscored: a driver row is a named
# tuple, whose fields cannot start with one).
PAGE_TOTAL = "page_total"
# The study's data version beside them, on a page of one study.
PAGE_VERSION = "page_version"
# Totals kept, by shape and filter values: bounded as the shapes are.
MAX_TOTALS = 4096
AUDIT = AuditRecord.__table__  # type: ignore[attr-defined]


def _condition_shape(condition: Any) -> tuple[tuple[int, Any], Any] | None:
    """((column, operator), value) of `column <op> value`, or None for any other condition."""
    if (
        type(condition) is BinaryExpression
        and isinstance(condition.left, Column)
        and type(condition.right) is BindParameter
        and not condition.modifiers
        and not condition.right.expanding
        and condition.right.value is not None
    ):
        return (id(condition.left), condition.operator), condition.right.value
    return None


def _order_shape(element: Any) -> tuple[int, Any] | None:
    if isinstance(element, Column):
        return id(element), None
    if type(element) is UnaryExpression and isinstance(element.element, Column):
        return id(element.element), element.modifier
    return None


class SharedPage(NamedTuple):
    page: Select[Any]  # the page's rows, each with the total beside its columns
    total: Select[Any]  # the total alone, for a page past the end (no row to carry it)
    versioned: bool = False  # the page pins one study: its rows carry the study's version


class PagePlan(NamedTuple):
    statements: SharedPage
    params: dict[str, Any]
    # Where the total of these filters is kept (a versioned page), else None.
    total_key: tuple[Any, ...] | None


class PageStatements:
    """Page statements by shape; values go in as parameters named w0, w1, …, _limit, _offset."""

    def __init__(self) -> None:
        self._by_shape: dict[tuple[Any, ...], SharedPage] = {}
        # (shape, filter values) -> (the study's version, the total counted at it)
        self._totals: dict[tuple[Any, ...], tuple[int, int]] = {}

    def statement(
        self,
        table: Any,
        columns: Sequence[Any],
        where: Sequence[Any],
        order: Sequence[Any],
        limit: int,
        offset: int,
    ) -> PagePlan | None:
        """The shared statements for this page and the parameters to run them with; None when
        the page has a condition or an ordering this does not recognise. A versioned page's
        parameters say no total is known (`known_total` fills one in)."""
        conditions = [_condition_shape(c) for c in where]
        orders = [_order_shape(o) for o in order]
        if any(c is None for c in conditions) or any(o is None for o in orders):
            return None
        params: dict[str, Any] = {f"w{i}": c[1] for i, c in enumerate(conditions)}  # type: ignore[index]
        params["_limit"], params["_offset"] = limit, offset
        key = (
            id(table),
            tuple(id(c) for c in columns),
            tuple(c[0] for c in conditions),  # type: ignore[index]
            tuple(orders),
        )
        shared = self._by_shape.get(key)
        if shared is None:
            shared = self._build(table, columns, where, order)
            if len(self._by_shape) >= MAX_SHAPES:
                self._by_shape.clear()
            self._by_shape[key] = shared
        if not shared.versioned:
            return PagePlan(shared, params, None)
        params["_known_version"], params["_known_total"] = -1, 0
        return PagePlan(shared, params, (key, tuple(c[1] for c in conditions)))  # type: ignore[index]

    def known_total(self, plan: PagePlan) -> None:
        """Send the total last counted for these filters, with the version it was counted at."""
        if plan.total_key is not None and (known := self._totals.get(plan.total_key)) is not None:
            plan.params["_known_version"], plan.params["_known_total"] = known

    def remember_total(self, plan: PagePlan, version: int, total: int) -> None:
        """Keep the total a versioned page answered with, unless it was the one already kept."""
        if plan.total_key is None or version == plan.params["_known_version"]:
            return
        if len(self._totals) >= MAX_TOTALS and plan.total_key not in self._totals:
            self._totals.clear()
        self._totals[plan.total_key] = (version, total)

    @staticmethod
    def _build(table: Any, columns: Sequence[Any], where: Sequence[Any], order: Sequence[Any]) -> SharedPage:
        # Each condition again with a named parameter in place of its value, its type kept (a
        # UUID column's parameter converts as the column's own would).
        named = [
            c.left.operate(c.operator, bindparam(f"w{i}", type_=c.right.type)) for i, c in enumerate(where)
        ]
        study = table.c.get("study_id")
        pinned = [
            bindparam(f"w{i}", type_=c.right.type)
            for i, c in enumerate(where)
            # the ORM's column is an annotated copy of the table's: compared by table and name
            if study is not None and c.left.table is table and c.left.key == study.key and c.operator is eq
        ]
        return page_select(
            table,
            columns,
            named,
            order,
            bindparam("_limit", type_=Integer),
            bindparam("_offset", type_=Integer),
            pinned[0] if pinned else None,
        )


def page_select(
    table: Any,
    columns: Sequence[Any],
    where: Sequence[Any],
    order: Sequence[Any],
    limit: Any,
    offset: Any,
    study: BindParameter[Any] | None = None,
) -> SharedPage:
    """A page's statements: `columns` with the total beside them, and the total alone. `limit` and
    `offset` are numbers, or parameters in a shared statement. With `study` (the parameter of
    the page's one study), the rows also carry the study's version, and the total is counted
    only when that version is not `_known_version` (else it is `_known_total`)."""
    total = core_select(func.count().label(PAGE_TOTAL)).select_from(table).where(*where)
    counted: Any = total.scalar_subquery()
    versions: list[Any] = []
    if study is not None:
        version = (
            # A literal 0, not a parameter: a shared statement's parameters are only the named ones.
            core_select(func.coalesce(func.max(AUDIT.c.seq), literal_column("0")))
            .where(AUDIT.c.study_id == study)
            .scalar_subquery()
        )
        known = bindparam("_known_version", type_=BigInteger)
        counted = case((version == known, bindparam("_known_total", type_=Integer)), else_=counted)
        versions = [version.label(PAGE_VERSION)]
    page = (
        core_select(*columns, *versions, counted.label(PAGE_TOTAL))
        .where(*where)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    )
    return SharedPage(page, total, study is not None)


page_statements = PageStatements()
