"""Query rows in a form a worker process receives cheaply.

The statistics run in worker processes (service.common.heavy), so their input rows are pickled,
and pickling holds the GIL: a SQLAlchemy Row pickles about ten times slower than a plain tuple
(0.73 s against 0.07 s for 100,000 four-column rows), and at 100,000 patients that stalled every
other request of the server for seconds. Here rows are named tuples of one type per column list
(attribute access as a Row's), and a whole result pickles as its column names and plain tuples."""

import asyncio
import collections
import functools
import pickle
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

_PREFIX = "Row__"


@functools.cache
def row_type(fields: tuple[str, ...]) -> Any:
    """The named-tuple type of these columns, reachable by name from this module (so that a
    single row pickles too, in any process: see __getattr__)."""
    name = _PREFIX + "__".join(fields)
    made = collections.namedtuple(name, fields)  # type: ignore[misc]
    made.__module__ = __name__
    setattr(sys.modules[__name__], name, made)
    return made


def __getattr__(name: str) -> Any:
    # A worker unpickling a row of a type it has not made yet makes it from its name.
    if name.startswith(_PREFIX):
        return row_type(tuple(name[len(_PREFIX) :].split("__")))
    raise AttributeError(name)


# Rows pickled per slice by `pack_for_worker`: about 5 ms of the event loop each.
PACK_BATCH = 10_000


class Fetched(Sequence[Any]):
    """Rows of one column list, read as named tuples. On the server they are kept as plain
    tuples and made into named tuples as they are read (`of_values`): the collector stops
    looking at a plain tuple of plain values after its first pass, but walks every named tuple
    at every pass — with 300,000 assessment rows held, each full collection took up to 380 ms
    with the event loop stopped, 40 of them in two requests (measured in-process, Postgres,
    100,000 patients). In a worker they are named tuples from the start."""

    def __init__(self, fields: Sequence[str], data: Iterable[Sequence[Any]]) -> None:
        self.fields = tuple(fields)
        self._make = row_type(self.fields)._make
        self._rows: list[Any] | None = [self._make(values) for values in data]
        self._values: list[tuple[Any, ...]] = []
        self._packed: list[bytes] | None = None

    @classmethod
    def of_values(cls, fields: Sequence[str], values: list[tuple[Any, ...]]) -> "Fetched":
        fetched = cls(fields, ())
        fetched._rows, fetched._values = None, values
        return fetched

    def _plain(self, start: int, stop: int) -> list[tuple[Any, ...]]:
        if self._rows is None:
            return self._values[start:stop]
        return [tuple(row) for row in self._rows[start:stop]]

    async def pack_for_worker(self) -> None:
        """Pickle the rows a slice at a time with the event loop free in between, before they are
        sent to a worker (service.common.heavy calls this): pickled whole, as the worker's queue
        does, 300,000 assessment rows held the interpreter — every request of the server — for
        140 ms."""
        if self._packed is not None:
            return
        packed = []
        for start in range(0, len(self), PACK_BATCH):
            packed.append(
                pickle.dumps(self._plain(start, start + PACK_BATCH), protocol=pickle.HIGHEST_PROTOCOL)
            )
            await asyncio.sleep(0)
        self._packed = packed

    def __reduce__(self) -> tuple[Any, ...]:
        if self._packed is not None:
            # Bytes pickle as a copy: the whole result is sent in a few milliseconds.
            return (_unpack, (self.fields, self._packed))
        return (Fetched, (self.fields, self._plain(0, len(self))))

    def column(self, name: str) -> Iterator[Any]:
        """One column's values, without making a named tuple of each row."""
        at = self.fields.index(name)
        return (values[at] for values in (self._values if self._rows is None else self._rows))

    def __len__(self) -> int:
        return len(self._values) if self._rows is None else len(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows) if self._rows is not None else map(self._make, self._values)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if self._rows is not None:
            return self._rows[index]
        if isinstance(index, slice):
            return [self._make(values) for values in self._values[index]]
        return self._make(self._values[index])

    def __repr__(self) -> str:
        return f"Fetched({self.fields}, {len(self)} rows)"


def _unpack(fields: tuple[str, ...], packed: list[bytes]) -> Fetched:
    return Fetched(fields, (values for chunk in packed for values in pickle.loads(chunk)))  # noqa: S301 - our own rows, from this server


def column_of(rows: Sequence[Any], name: str) -> Iterator[Any]:
    """One column of query rows: read straight from a Fetched's plain tuples, else by attribute."""
    if isinstance(rows, Fetched):
        return rows.column(name)
    return (getattr(row, name) for row in rows)


def usable(fields: Sequence[str]) -> bool:
    """Whether these column names can be a named tuple's fields (identifiers, no leading _)."""
    return all(f.isidentifier() and not f.startswith("_") and "__" not in f for f in fields)
