"""The time an answer is made at: the cut's when answering on a cut (service.data_cuts.reading
sets it for the request), so that a timestamp written into an export does not make two answers
on the same cut differ."""

from contextvars import ContextVar
from datetime import UTC, datetime

FROZEN_AT: ContextVar[datetime | None] = ContextVar("frozen_at", default=None)


def now() -> datetime:
    return FROZEN_AT.get() or datetime.now(UTC)
