"""A deterministic synthetic registry for the benchmark: a fixed seed gives the same studies,
arms, patients, treatments, adverse events and outcomes every time.

Scale N puts N patients in one large two-arm study (the one the analytics scenarios read) and 1%
more in each of two small studies (so that filters have something to filter out); each patient
has about 2 treatments, 10 adverse events and 5 outcomes; 30% are transplanted (40% of them
with acute GVHD after it). Rows go in through the service's own
table definitions with multi-row INSERTs (the service has no bulk-import endpoint yet), without
audit records: the audit chain is exercised by the create scenario, not by the load.

A loaded database is kept and reused (SQLite: a file under bench/.data; Postgres: a database
named after the scale and the schema revision) until the schema or the generator changes."""

import asyncio
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from service.adverse_events.terms import CANONICAL
from service.db.migrate import upgrade
from service.db.models import AdverseEvent, Agent, Arm, Outcome, Patient, Study, Treatment, utcnow

GENERATOR_VERSION = 2  # 2: risk groups, transplants and GVHD (the transplant analyses)
SEED = 20261122
DATA_DIR = Path(__file__).resolve().parent / ".data"
TERMS = [t.name for t in CANONICAL][:30]
MARKER_AGENT = "bench-dataset-complete"
BATCH = 5_000


@dataclass(frozen=True)
class Dataset:
    url: str
    scale: int
    study_id: uuid.UUID  # the large study
    arm_ids: tuple[uuid.UUID, uuid.UUID]
    patient_ids: tuple[uuid.UUID, ...]  # a sample of the large study's patients, for reads and creates


def _ids(rng: random.Random) -> Iterator[uuid.UUID]:
    # Time-ordered like the service's uuid7, but from the seeded generator: same ids every run.
    counter = 0
    while True:
        counter += 1
        yield uuid.UUID(int=(0x0190_0000_0000 + counter) << 80 | 0x7000 << 64 | rng.getrandbits(62) | 1 << 63)


def _stamp() -> dict[str, Any]:
    now = utcnow()
    return {"version": 1, "created_at": now, "updated_at": now, "provenance": []}


def _patient_records(
    rng: random.Random, ids: Iterator[uuid.UUID], study_id: uuid.UUID, arm_id: uuid.UUID, code: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    stamp = _stamp()
    pid = next(ids)
    patient = {
        **stamp,
        "id": pid,
        "study_id": study_id,
        "arm_id": arm_id,
        "subject_code": code,
        "age_years": float(rng.randint(1, 89)),
        "sex": rng.choice(["female", "male"]),
        "diagnosis": rng.choice(["T-ALL", "B-ALL", "AML"]),
        "disease_status": rng.choice(["relapsed", "refractory", "newly_diagnosed"]),
        "risk_group": rng.choice(["favourable", "intermediate", "adverse"]),
        "genetic_findings": [],
        "markers": [],
        "age_capped": False,
    }
    induction = next(ids)
    treatments = [
        {
            **stamp,
            "id": induction,
            "patient_id": pid,
            "phase": "induction",
            "start_day": 1,
            "end_day": 28,
            "on_study": True,
        },
        {
            **stamp,
            "id": next(ids),
            "patient_id": pid,
            "phase": "consolidation",
            "start_day": 35,
            "end_day": 63,
            "on_study": True,
        },
    ]
    events = []
    for _ in range(rng.randint(8, 12)):
        onset = rng.randint(1, 120)
        grade = rng.choices([1, 2, 3, 4, 5], weights=[40, 30, 20, 9, 1])[0]
        events.append(
            {
                **stamp,
                "id": next(ids),
                "patient_id": pid,
                "treatment_id": induction,
                "term": rng.choice(TERMS),
                "grade": grade,
                "grading_system": "CTCAE_v5",
                "onset_day": onset,
                "resolution_day": onset + rng.randint(1, 30) if grade < 5 else None,
                "outcome": "fatal" if grade == 5 else "resolved",
                "provenance": [],
            }
        )
    outcomes = []
    for day, label in ((28, "end of induction"), (63, "end of consolidation"), (180, "month 6")):
        category = rng.choices(["CR", "CRi", "PR", "NR"], weights=[50, 15, 15, 20])[0]
        outcomes.append(
            {
                **stamp,
                "id": next(ids),
                "patient_id": pid,
                "treatment_id": induction,
                "kind": "response",
                "study_day": day,
                "timepoint_label": label,
                "category": category,
                "possible_categories": [],
                "mrd_status": rng.choice(["negative", "positive"]) if category in ("CR", "CRi") else None,
                "mrd_method": "flow",
                "markers": [],
            }
        )
    if rng.random() < 0.4:
        outcomes.append(
            {
                **stamp,
                "id": next(ids),
                "patient_id": pid,
                "kind": "event",
                "event_type": "relapse",
                "study_day": rng.randint(90, 700),
                "possible_categories": [],
                "markers": [],
            }
        )
    if rng.random() < 0.3:
        transplant = rng.randint(70, 200)
        outcomes.append(
            {
                **stamp,
                "id": next(ids),
                "patient_id": pid,
                "kind": "event",
                "event_type": "hsct",
                "study_day": transplant,
                "possible_categories": [],
                "markers": [],
            }
        )
        if rng.random() < 0.4:
            outcomes.append(
                {
                    **stamp,
                    "id": next(ids),
                    "patient_id": pid,
                    "kind": "event",
                    "event_type": "gvhd",
                    "gvhd_kind": "acute",
                    "gvhd_grade": rng.randint(1, 4),
                    "study_day": transplant + rng.randint(10, 100),
                    "possible_categories": [],
                    "markers": [],
                }
            )
    died = rng.random() < 0.5
    outcomes.append(
        {
            **stamp,
            "id": next(ids),
            "patient_id": pid,
            "kind": "event",
            "event_type": "death" if died else "last_follow_up",
            "study_day": rng.randint(30, 1500),
            "possible_categories": [],
            "markers": [],
        }
    )
    return patient, treatments, events, outcomes


async def _insert(connection: AsyncConnection, model: Any, rows: list[dict[str, Any]]) -> None:
    # One multi-row INSERT needs the same keys in every row: absent optional fields are null.
    keys = {key for row in rows for key in row}
    rows = [{key: row.get(key) for key in keys} for row in rows]
    for start in range(0, len(rows), BATCH):
        await connection.execute(insert(model), rows[start : start + BATCH])


async def _load(url: str, scale: int) -> None:
    rng = random.Random(SEED)
    ids = _ids(rng)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        studies = [
            (next(ids), scale, "Synthetic large study"),
            (next(ids), max(scale // 100, 1), "Small study A"),
            (next(ids), max(scale // 100, 1), "Small study B"),
        ]
        async with engine.begin() as connection:
            for study_id, size, title in studies:
                await connection.execute(
                    insert(Study),
                    [
                        {
                            **_stamp(),
                            "id": study_id,
                            "title": title,
                            "design": "other",
                            "phases": [],
                            "registry_ids": [],
                            "conditions": [],
                        }
                    ],
                )
                arms = [next(ids), next(ids)]
                await connection.execute(
                    insert(Arm),
                    [
                        {**_stamp(), "id": arm, "study_id": study_id, "label": f"Arm {'AB'[i]}"}
                        for i, arm in enumerate(arms)
                    ],
                )
                chunk: tuple[list[Any], list[Any], list[Any], list[Any]] = ([], [], [], [])
                for i in range(size):
                    records = _patient_records(rng, ids, study_id, arms[i % 2], f"S{i:06d}")
                    chunk[0].append(records[0])
                    for part, rows in zip(chunk[1:], records[1:], strict=True):
                        part.extend(rows)
                    if len(chunk[0]) >= 10_000 or i == size - 1:
                        for model, rows in zip(
                            (Patient, Treatment, AdverseEvent, Outcome), chunk, strict=True
                        ):
                            await _insert(connection, model, rows)
                        chunk = ([], [], [], [])
            await connection.execute(
                insert(Agent), [{**_stamp(), "id": next(ids), "name": MARKER_AGENT, "targets": []}]
            )
        # After a bulk load, as a DBA would: every adverse event, outcome and treatment inserted
        # updated its patient's last recorded day (the triggers), leaving the patients table
        # many times its size; compact it and gather planner statistics.
        maintenance = engine.execution_options(isolation_level="AUTOCOMMIT")
        async with maintenance.connect() as connection:
            if url.startswith("postgresql"):
                await connection.execute(text("VACUUM FULL patients"))
                await connection.execute(text("VACUUM ANALYZE"))
            else:
                await connection.execute(text("VACUUM"))
                await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def _complete(url: str) -> bool:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return (await connection.scalar(select(Agent.id).where(Agent.name == MARKER_AGENT))) is not None
    except Exception:  # a missing or half-built database is rebuilt
        return False
    finally:
        await engine.dispose()


async def _describe(url: str, scale: int) -> Dataset:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            study_id = await connection.scalar(select(Study.id).where(Study.title == "Synthetic large study"))
            arms = (
                await connection.scalars(select(Arm.id).where(Arm.study_id == study_id).order_by(Arm.id))
            ).all()
            sample = (
                await connection.scalars(
                    select(Patient.id).where(Patient.study_id == study_id).order_by(Patient.id).limit(1000)
                )
            ).all()
    finally:
        await engine.dispose()
    return Dataset(url, scale, study_id, (arms[0], arms[1]), tuple(sample))


def _schema_revision() -> str:
    versions = Path(__file__).resolve().parents[1] / "migrations" / "versions"
    return max(p.stem.rsplit("_", 1)[-1] for p in versions.glob("*.py"))


async def prepare(backend: str, scale: int, postgres_url: str | None) -> Dataset:
    """The dataset of `scale` patients on `backend`, built once and reused."""
    name = f"bench_{scale}_s{_schema_revision()}_g{GENERATOR_VERSION}"
    if backend == "sqlite":
        DATA_DIR.mkdir(exist_ok=True)
        path = DATA_DIR / f"{name}.db"
        url = f"sqlite+aiosqlite:///{path}"
        if not await _complete(url):
            path.unlink(missing_ok=True)
            await asyncio.to_thread(upgrade, url)
            await _load(url, scale)
        return await _describe(url, scale)
    assert postgres_url, "TEST_POSTGRES_URL is needed for the Postgres benchmark"
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    if not await _complete(url):
        admin = create_async_engine(postgres_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        await asyncio.to_thread(upgrade, url)
        await _load(url, scale)
    await vacuumed(url)
    return await _describe(url, scale)


async def vacuumed(url: str) -> None:
    """A reused Postgres dataset vacuumed and analysed before it is measured again. Earlier runs
    left dead rows behind (each create updates its patient's last recorded day; the isolation
    scenario imports and deletes studies), and a server whose autovacuum is off (as on one of
    the machines this ran on) keeps them: at 100,000 patients 84,410 dead patient rows beside
    102,000 live ones cut the page scenario to a quarter, for both apps. The throughput
    scenarios call it before each app's turn too: one app's creates would otherwise leave the
    next app's reads a longer chain of row versions per patient."""
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()
