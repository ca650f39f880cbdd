"""The survival endpoint on a study of 100,000 patients (SQLite and Postgres).

Data goes in with bulk Core inserts (the API path is not what is measured); the request is timed
end to end through the ASGI app, JSON encoding included. The bound is loose enough for a busy CI
machine: the closing note reports the measured figure."""

import asyncio
import random
import time
import uuid
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from service.db.ids import uuid7
from service.db.models import Arm, Outcome, Patient, Study, utcnow

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


def test_survival_for_100k_patients(client: TestClient[Any], database_url: str, backend: str) -> None:
    study_id = asyncio.run(_populate(database_url))
    url = f"/api/v1/studies/{study_id}/survival"
    client.get(url, params={"group_by": "arm"})  # warm-up: first-request imports and plans
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        response = client.get(url, params={"group_by": "arm", "times": "180,365"})
        timings.append(time.perf_counter() - started)
    body = response.json()
    assert response.status_code == 200
    assert sum(g["n"] for g in body["groups"]) == PATIENTS
    assert body["log_rank"]["df"] == 1
    best = min(timings)
    print(f"\nsurvival, {PATIENTS} patients, 2 arms, {backend}: best of 3 = {best * 1000:.0f} ms")
    assert best < 1.5, f"survival took {best:.2f} s for {PATIENTS} patients"
