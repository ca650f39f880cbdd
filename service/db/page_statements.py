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
whose caller's scope adds a condition."""

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Column, Integer, Select, bindparam, func
from sqlalchemy import select as core_select
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, UnaryExpression

# Shapes are few (a handful of filters per list, each on or off, times the sort keys), but a
# bound keeps a caller who tries every combination from growing the cache without end.
MAX_SHAPES = 2048

# The label of the page's total, beside the columns (not underscored: a driver row is a named
# tuple, whose fields cannot start with one).
PAGE_TOTAL = "page_total"


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


class PageStatements:
    """Page statements by shape; values go in as parameters named w0, w1, …, _limit, _offset."""

    def __init__(self) -> None:
        self._by_shape: dict[tuple[Any, ...], SharedPage] = {}

    def statement(
        self,
        table: Any,
        columns: Sequence[Any],
        where: Sequence[Any],
        order: Sequence[Any],
        limit: int,
        offset: int,
    ) -> tuple[SharedPage, dict[str, Any]] | None:
        """The shared statements for this page and the parameters to run them with; None when
        the page has a condition or an ordering this does not recognise."""
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
        return shared, params

    @staticmethod
    def _build(table: Any, columns: Sequence[Any], where: Sequence[Any], order: Sequence[Any]) -> SharedPage:
        # Each condition again with a named parameter in place of its value, its type kept (a
        # UUID column's parameter converts as the column's own would).
        named = [
            c.left.operate(c.operator, bindparam(f"w{i}", type_=c.right.type)) for i, c in enumerate(where)
        ]
        return page_select(
            table,
            columns,
            named,
            order,
            bindparam("_limit", type_=Integer),
            bindparam("_offset", type_=Integer),
        )


def page_select(
    table: Any, columns: Sequence[Any], where: Sequence[Any], order: Sequence[Any], limit: Any, offset: Any
) -> SharedPage:
    """A page's statements: `columns` with the total beside them, and the total alone. `limit` and
    `offset` are numbers, or parameters in a shared statement."""
    total = core_select(func.count().label(PAGE_TOTAL)).select_from(table).where(*where)
    page = (
        core_select(*columns, total.scalar_subquery().label(PAGE_TOTAL))
        .where(*where)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    )
    return SharedPage(page, total)


page_statements = PageStatements()
