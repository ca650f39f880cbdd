"""SQL conditions shared by the list filters of several areas."""

from typing import Any

from sqlalchemy import ColumnElement, String, cast, func

# A list filter's SQL condition. Litestar reads the filter dependencies' return types, and
# msgspec refuses a union with a custom type, so SQLModel comparisons (typed as bool) are
# written `col(Model.field) == value`, which is typed as the condition it is.
Condition = ColumnElement[bool]


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def json_list_has(column: Any, value: str) -> ColumnElement[bool]:
    """The JSON list of strings in `column` has an element equal to `value` (case-insensitive)."""
    pattern = f'%"{_escape_like(value.lower())}"%'
    return func.lower(cast(column, String)).like(pattern, escape="\\")


def json_text_contains(column: Any, value: str) -> ColumnElement[bool]:
    """Some string in the JSON value of `column` contains `value` (case-insensitive)."""
    return func.lower(cast(column, String)).like(f"%{_escape_like(value.lower())}%", escape="\\")


def text_contains(column: Any, value: str) -> ColumnElement[bool]:
    return func.lower(column).like(f"%{_escape_like(value.lower())}%", escape="\\")
