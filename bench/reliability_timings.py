"""Wall-clock figures that must not be asserted in `make test` (the machines are shared): run with
`make bench`. Each figure is printed with what it measured; correctness is still checked.

- survival by arm for a study of 100,000 patients, through the ASGI app, best of 3;
- a 1 MiB body of adversarial free text (letter runs with no @, repeated "MRN", digit runs), the
  time to refuse or accept it, and how many /health requests other clients got answered meanwhile.

SQLite always; Postgres too when TEST_POSTGRES_URL is set."""

import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.app import create_app
from service.db.ids import uuid7
from service.db.models import Arm, Outcome, Patient, Study, utcnow
from service.settings import Settings
from tests.databases import fresh_database, issue_token

PATIENTS = 100_000


async def _populate(url: str) -> uuid.UUID:
    rng = random.Random(7)
    engine = create_async_engine(url, poolclass=NullPool)
    study_id, arms = uuid7(), [uuid7(), uuid7()]
    now = utcnow()
    stamp = {"version": 1, "created_at": now, "updated_at": now, "provenance": []}
    patients, outcomes = [], []
    for i in range(PATIENTS):
        pid = uuid7()
        patients.append(
            {
                **stamp,
                "id": pid,
                "study_id": study_id,
                "arm_id": arms[i % 2],
                "subject_code": f"S{i}",
                "diagnosis": "AML",
                "genetic_findings": [],
                "markers": [],
            }
        )
        died = rng.random() < 0.6
        outcomes.append(
            {
                **stamp,
                "id": uuid7(),
                "patient_id": pid,
                "kind": "event",
                "study_day": rng.randint(2, 1500),
                "event_type": "death" if died else "last_follow_up",
                "possible_categories": [],
                "markers": [],
            }
        )
    async with engine.begin() as connection:
        await connection.execute(
            insert(Study),
            [
                {
                    **stamp,
                    "id": study_id,
                    "title": "scale",
                    "design": "other",
                    "phases": [],
                    "registry_ids": [],
                    "conditions": [],
                }
            ],
        )
        await connection.execute(
            insert(Arm),
            [{**stamp, "id": arm, "study_id": study_id, "label": f"arm {i}"} for i, arm in enumerate(arms)],
        )
        for start in range(0, PATIENTS, 20_000):
            await connection.execute(insert(Patient), patients[start : start + 20_000])
            await connection.execute(insert(Outcome), outcomes[start : start + 20_000])
    # Planner statistics, as autovacuum would gather after a load this size: without them
    # Postgres plans the joins for empty tables.
    async with engine.connect() as connection:
        await connection.execute(text("ANALYZE"))
        await connection.commit()
    await engine.dispose()
    return study_id


async def _survival(url: str, secret: str) -> float:
    study_id = await _populate(url)
    app = create_app(Settings(database_url=url, rate_limit_per_minute=0))
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers=headers, timeout=120
    ) as client:
        path = f"/api/v1/studies/{study_id}/survival"
        await client.get(path, params={"group_by": "arm"})  # warm-up
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            response = await client.get(path, params={"group_by": "arm", "times": "180,365"})
            timings.append(time.perf_counter() - started)
        body = response.json()
        assert response.status_code == 200 and sum(g["n"] for g in body["groups"]) == PATIENTS
    await app.state.engine.dispose()
    return min(timings)


async def _adversarial(url: str, secret: str) -> tuple[float, int, int]:
    app = create_app(Settings(database_url=url, rate_limit_per_minute=0))
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {secret}"}
    # The slowest input found for the de-identification patterns: "a@" runs (an @ with a local
    # part before it, never a domain after it), 50 quotes of 20,000 characters: about 1 MiB.
    quote = ("a@" * 10_000)[:20_000]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers=headers, timeout=120
    ) as client:
        answered = 0
        done = asyncio.Event()

        async def poll_health() -> None:
            nonlocal answered
            while not done.is_set():
                if (await client.get("/health")).status_code == 200:
                    answered += 1
                await asyncio.sleep(0)

        study = (
            await client.post("/api/v1/studies", json={"title": "adversarial", "design": "other"})
        ).json()
        payload = {
            "study_id": study["id"],
            "measure": "adversarial",
            "provenance": [{"source_document": "d", "location": "l", "quote": quote}] * 50,
        }
        poller = asyncio.create_task(poll_health())
        started = time.perf_counter()
        response = await client.post("/api/v1/reported-results", json=payload)
        elapsed = time.perf_counter() - started
        done.set()
        await poller
    await app.state.engine.dispose()
    return elapsed, response.status_code, answered


def main() -> None:
    import logging

    logging.disable(logging.INFO)  # the figures, not the access lines
    backends = ["sqlite"] + (["postgres"] if os.environ.get("TEST_POSTGRES_URL") else [])
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp, fresh_database(backend, Path(tmp)) as url:
            secret = issue_token(url, "bench", "admin")
            best = asyncio.run(_survival(url, secret))
            print(f"survival by arm, {PATIENTS} patients, {backend}: best of 3 = {best * 1000:.0f} ms")
            elapsed, status, answered = asyncio.run(_adversarial(url, secret))
            print(
                f"adversarial free-text body ({backend}): {status} in {elapsed * 1000:.0f} ms; "
                f"/health answered {answered} times meanwhile"
            )


if __name__ == "__main__":
    main()
