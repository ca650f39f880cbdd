"""Counts and timings that need the service in-process or the database directly:

- statements per request: the service's SQL statements (transaction control left out) for a
  warm read, page and create, counted with SQLAlchemy's cursor event and, for a read on
  Postgres's driver, service.db.driver_reads.observers; the raw app's by
  construction (its handlers in bench/raw_app.py);
- the overall-survival fetch with each patient's last recorded day from the maintained column
  (migration 0009) against the same query with the five-way UNION the service ran before;
- each endpoint's per-patient rows (what time-to-event answers and every export read), with the
  service's own statement: a statement whose plan goes wrong on one database at scale (minutes
  instead of seconds, twice so far) is named here rather than found as a slow export."""

import threading
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from bench.dataset import Dataset
from service.app import create_app
from service.db import driver_reads
from service.settings import Settings

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


async def count_statements(data: Dataset, token: str) -> dict[str, int]:
    app = create_app(Settings(database_url=data.url, rate_limit_per_minute=0, log_level="WARNING"))
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(TRANSACTION_CONTROL):
            statements.append(statement)

    engine = app.state.engine.sync_engine
    headers = {"Authorization": f"Bearer {token}"}
    patient = data.patient_ids[0]
    requests = {
        "read": ("GET", f"/api/v1/patients/{patient}", None),
        "page": ("GET", f"/api/v1/patients?study_id={data.study_id}&diagnosis=AML&limit=50", None),
        "create": (
            "POST",
            "/api/v1/adverse-events",
            {
                "patient_id": str(patient),
                "term": "Nausea",
                "grade": 1,
                "grading_system": "CTCAE_v5",
                "onset_day": 1,
            },
        ),
    }
    counts: dict[str, int] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench", headers=headers
    ) as client:
        assert (await client.get(f"/api/v1/patients/{patient}")).status_code == 200  # token now cached
        event.listen(engine, "before_cursor_execute", record)
        # One record's read on Postgres goes to the driver, past the engine's events.
        driver_reads.observers.append(statements.append)
        try:
            for name, (method, path, body) in requests.items():
                statements.clear()
                extra = {"Idempotency-Key": uuid.uuid4().hex} if method == "POST" else {}
                response = await client.request(method, path, json=body, headers=extra)
                assert response.status_code in (200, 201), response.text[:300]
                counts[name] = len(statements)
        finally:
            event.remove(engine, "before_cursor_execute", record)
            driver_reads.observers.remove(statements.append)
    await app.state.engine.dispose()
    # raw_app: token; row / page with its total.
    counts["raw read"] = 2
    counts["raw page"] = 2
    # token, patient exists, insert, previous hash (Postgres: with the chain's lock, one call of
    # audit_chain_head), audit insert, idempotency insert
    counts["raw create"] = 6
    return counts


_OS_COUNTS = """
WITH pts AS (SELECT id, arm_id{extra} FROM patients WHERE study_id = :study),
{last}
death AS (SELECT o.patient_id AS pid, min(o.study_day) AS day FROM outcomes o JOIN pts ON pts.id = o.patient_id
          WHERE o.kind = 'event' AND o.event_type = 'death' AND o.study_day IS NOT NULL GROUP BY o.patient_id)
SELECT pts.arm_id, coalesce(death.day, {last_day}) AS end_day, count(*) FROM pts
LEFT JOIN death ON death.pid = pts.id {join}
GROUP BY pts.arm_id, coalesce(death.day, {last_day})
"""
_UNION = """days AS (
  SELECT o.patient_id AS pid, o.study_day AS day FROM outcomes o JOIN pts ON pts.id = o.patient_id
  UNION ALL SELECT a.patient_id, a.onset_day FROM adverse_events a JOIN pts ON pts.id = a.patient_id
  UNION ALL SELECT a.patient_id, a.resolution_day FROM adverse_events a JOIN pts ON pts.id = a.patient_id
  UNION ALL SELECT t.patient_id, t.start_day FROM treatments t JOIN pts ON pts.id = t.patient_id
  UNION ALL SELECT t.patient_id, t.end_day FROM treatments t JOIN pts ON pts.id = t.patient_id),
last AS (SELECT pid, max(day) AS day FROM days WHERE day IS NOT NULL GROUP BY pid),"""
BEFORE_0009 = _OS_COUNTS.format(
    extra="", last=_UNION, last_day="last.day", join="LEFT JOIN last ON last.pid = pts.id"
)
SINCE_0009 = _OS_COUNTS.format(
    extra=", last_recorded_day", last="", last_day="pts.last_recorded_day", join=""
)


async def time_survival_fetches(url: str, study_id: uuid.UUID, runs: int = 3) -> dict[str, float]:
    """Best-of-`runs` milliseconds of each fetch; both must give the same rows."""
    engine = create_async_engine(url, poolclass=NullPool)
    key: Any = study_id if url.startswith("postgresql") else study_id.hex
    best: dict[str, float] = {}
    results: dict[str, Any] = {}
    try:
        async with engine.connect() as connection:
            for name, sql in (("union_ms", BEFORE_0009), ("column_ms", SINCE_0009)):
                for _ in range(runs):
                    started = time.perf_counter()
                    rows = (await connection.execute(text(sql), {"study": key})).all()
                    elapsed = (time.perf_counter() - started) * 1000
                    best[name] = min(best.get(name, elapsed), elapsed)
                results[name] = sorted(tuple(str(v) for v in row) for row in rows)
    finally:
        await engine.dispose()
    assert results["union_ms"] == results["column_ms"], "the maintained column disagrees with the UNION"
    return best


async def time_endpoint_rows(url: str, study_id: uuid.UUID, limit_s: float) -> dict[str, float | None]:
    """Seconds to fetch each endpoint's per-patient rows (service.analytics.estimands.endpoints),
    one run each; None for a fetch stopped after `limit_s` (Postgres's statement timeout, SQLite's
    interrupt), so that a pathological plan costs the run minutes at most, not hours."""
    from service.analytics.estimands.endpoints import ENDPOINTS, fetch_analysis_rows

    engine = create_async_engine(url, poolclass=NullPool)
    seconds: dict[str, float | None] = {}
    try:
        for endpoint in ENDPOINTS:
            async with AsyncSession(engine) as session:
                connection = await session.connection()
                stop: threading.Timer | None = None
                if url.startswith("postgresql"):
                    await connection.exec_driver_sql(f"SET statement_timeout = {int(limit_s * 1000)}")
                else:
                    raw = await connection.get_raw_connection()
                    # aiosqlite's sqlite3 connection; interrupt() is safe from another thread.
                    stop = threading.Timer(limit_s, raw.driver_connection._conn.interrupt)
                    stop.start()
                started = time.perf_counter()
                try:
                    await fetch_analysis_rows(session, study_id, endpoint)
                    seconds[endpoint] = time.perf_counter() - started
                # The timeout (asyncpg's own QueryCanceledError, unwrapped when it arrives while
                # the rows are read) or the interrupt; any other error is raised.
                except Exception as error:
                    if not any(word in str(error).lower() for word in ("cancel", "interrupt")):
                        raise
                    seconds[endpoint] = None
                finally:
                    if stop is not None:
                        stop.cancel()
    finally:
        await engine.dispose()
    return seconds
