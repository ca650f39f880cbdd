"""Query results sent to the statistics workers (service.analytics.fetched): packed a slice at a
time on the server, and the same rows in the worker either way."""

import asyncio
import pickle
import uuid

from service.analytics import fetched
from service.analytics.fetched import Fetched
from service.common.heavy import HeavyWork

FIELDS = ("patient_id", "study_day", "category")


def _rows(n: int) -> list[tuple[bytes, int | None, str | None]]:
    return [(uuid.UUID(int=i).bytes, i % 7 or None, "CR" if i % 3 else None) for i in range(n)]


def test_packed_rows_arrive_as_the_same_rows_in_their_order() -> None:
    values = _rows(fetched.PACK_BATCH * 2 + 17)
    result = Fetched.of_values(FIELDS, list(values))
    assert [tuple(r) for r in result] == values and result[3].category == values[3][2]
    assert [r.study_day for r in result[2:4]] == [values[2][1], values[3][1]]
    whole = pickle.loads(pickle.dumps(result))  # noqa: S301 - our own bytes
    asyncio.run(result.pack_for_worker())
    assert result._packed is not None and len(result._packed) == 3  # three slices
    packed = pickle.loads(pickle.dumps(result))  # noqa: S301 - our own bytes
    for received in (whole, packed):
        assert isinstance(received, Fetched) and received.fields == FIELDS
        assert [tuple(r) for r in received] == values
        assert received[5].study_day == values[5][1]


def test_packing_lets_other_tasks_run_between_slices() -> None:
    result = Fetched.of_values(FIELDS, _rows(fetched.PACK_BATCH * 4))
    ran: list[int] = []

    async def other() -> None:
        for i in range(10):
            ran.append(i)
            await asyncio.sleep(0)

    async def both() -> None:
        task = asyncio.create_task(other())
        await result.pack_for_worker()
        assert ran, "the loop ran nothing else while the rows were pickled"
        await task

    asyncio.run(both())


def test_a_worker_gets_packed_rows() -> None:
    result = Fetched(FIELDS, _rows(fetched.PACK_BATCH + 1))
    work = HeavyWork(1, 30.0)
    try:
        got = asyncio.run(work.run(len, result))
    finally:
        work.shutdown()
    assert got == fetched.PACK_BATCH + 1 and result._packed is not None


def test_rows_kept_on_the_server_leave_the_collector_alone() -> None:
    """Plain tuples of plain values are untracked by the collector after its first pass; named
    tuples never are (each full collection walked 300,000 of them)."""
    import gc

    result = Fetched.of_values(FIELDS, _rows(1000))
    gc.collect()
    assert not any(gc.is_tracked(values) for values in result._values)
    assert all(gc.is_tracked(row) for row in Fetched(FIELDS, _rows(10)))


def test_a_column_reads_the_same_values_as_the_rows() -> None:
    values = _rows(50)
    for rows in (
        Fetched.of_values(FIELDS, list(values)),
        Fetched(FIELDS, values),
        list(Fetched(FIELDS, values)),
    ):
        assert (
            list(fetched.column_of(rows, "category")) == [r.category for r in rows] == [v[2] for v in values]
        )
