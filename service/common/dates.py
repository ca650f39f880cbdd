"""Partial ISO dates (YYYY, YYYY-MM, YYYY-MM-DD) as sources print them."""

from datetime import date

from service.errors import RuleViolation


def check_partial_date(value: str | None, field: str) -> None:
    """The schema checks the shape; this checks the calendar (no 2024-02-30)."""
    if value is None or len(value) < 10:
        return
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise RuleViolation(f"{value} is not a calendar date", field=field) from exc


def check_date_order(start: str | None, end: str | None, field: str) -> None:
    """`end` may not precede `start` at the precision both share."""
    if start is None or end is None:
        return
    n = min(len(start), len(end))
    if end[:n] < start[:n]:
        raise RuleViolation(f"{field} {end} is before {start}", field=field)
