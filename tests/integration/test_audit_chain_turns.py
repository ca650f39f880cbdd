"""A commit that chains many audit records (a cascade delete queues one per deleted row) gives the
event loop turns while it hashes them (service.audit.trail), and the chain it writes still
verifies."""

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from service.audit import trail
from tests.databases import fresh_database


@pytest.mark.parametrize("records", [1, trail.CHAIN_SLICE * 2 + 1])
def test_chaining_many_records_lets_other_tasks_run_and_the_chain_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, records: int
) -> None:
    ticks = [0]
    seen_by_digest: list[int] = []  # how often the other task had run, at each record hashed
    hash_one = trail.digest

    def counting_digest(record: object, key: str | None = None) -> str:
        seen_by_digest.append(ticks[0])
        return hash_one(record, key)  # type: ignore[arg-type]

    monkeypatch.setattr(trail, "digest", counting_digest)

    async def other() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    async def commit_and_verify(url: str) -> tuple[int, str | None, list[int]]:
        engine = create_async_engine(url)
        ticker = asyncio.create_task(other())
        try:
            async with AsyncSession(engine) as session, session.begin():
                for _ in range(records):
                    await trail.record(session, "delete", "patient", uuid.uuid4(), {"sex": ["F", None]})
            hashed = list(seen_by_digest)  # verify hashes every record again
            async with AsyncSession(engine) as session:
                return (*await trail.verify(session), hashed)
        finally:
            ticker.cancel()
            await engine.dispose()

    with fresh_database("sqlite", tmp_path) as url:
        checked, problem, hashed = asyncio.run(commit_and_verify(url))
    assert (checked, problem) == (records, None)
    assert len(hashed) == records
    if records > trail.CHAIN_SLICE:
        # No statement runs between two records' hashes: only the commit hook's turns let the
        # other task run there.
        assert hashed[-1] > hashed[0]
    else:
        assert hashed[-1] == hashed[0]
