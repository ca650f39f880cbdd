"""A write's statements on Postgres go straight to the driver, inside the session's transaction
(service.db.driver_writes): a create answers exactly as through the engine and writes the same
rows and audit records; every statement of a create goes to the driver; a failed statement
raises what SQLAlchemy raised (the handlers map it as before) and nothing of the transaction is
kept; a statement that needs SQLAlchemy's execution context stays on the engine."""

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select, text
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from service.__main__ import main
from service.adverse_events.service import AdverseEventRepository
from service.audit import trail
from service.common import idempotency
from service.common.repository import foreign_key_violation, row_by_id
from service.db import driver_writes, models
from tests import factories as f
from tests.integration.test_driver_reads import sent_to_driver

API = "/api/v1"
VOLATILE = {"id", "created_at", "updated_at", "patient_id", "study_id", "arm_id", "site_id", "treatment_id"}


@contextmanager
def engine_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Writes as they ran before: every statement through SQLAlchemy's execute."""
    with monkeypatch.context() as patched:
        patched.setattr(driver_writes, "_adapted", lambda connection: None)
        yield


@pytest.fixture
def postgres(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("writes on the driver are Postgres's (SQLite writes through the engine)")


def _creates(client: TestClient[Any], agent: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """One create of each kind, as (collection, response body without ids and times)."""
    return [
        (collection, {k: v for k, v in body.items() if k not in VOLATILE})
        for collection, body in f.one_of_each(client, agent)
    ]


def test_creates_answer_as_through_the_engine_and_their_audit_chain_verifies(
    client: TestClient[Any], postgres: None, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    agent = f.agent(client)
    with sent_to_driver() as statements:
        on_driver = _creates(client, agent)
    assert statements, "nothing went to the driver"
    with engine_path(monkeypatch), sent_to_driver() as statements:
        on_engine = _creates(client, agent)
    assert statements == []
    assert on_driver == on_engine
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["audit", "verify"]) == 0


def test_every_statement_of_an_adverse_event_create_goes_to_the_driver(
    client: TestClient[Any], postgres: None
) -> None:
    patient = f.patient(client, f.study(client)["id"])
    with sent_to_driver() as statements:
        created = client.post(
            f"{API}/adverse-events",
            json={"patient_id": patient["id"], "term": "Nausea", "grade": 2, "grading_system": "CTCAE_v5"},
            headers={"Idempotency-Key": f"driver-{uuid.uuid4()}"},
        )
    assert created.status_code == 201, created.text
    kinds = [" ".join(s.split()[:3]) for s in statements]
    assert len(statements) == 6, kinds
    # The patient's read carries its study's lock: the write's lock check sends nothing more.
    (patient_read,) = [s for s in statements if s.startswith("SELECT patients.")]
    assert "studies.lock" in patient_read and "JOIN studies" in patient_read
    assert not any(s.startswith("SELECT studies.lock") for s in statements)
    assert sum(s.startswith("INSERT INTO adverse_events") for s in statements) == 1
    assert sum(s.startswith("INSERT INTO audit_records") for s in statements) == 1
    assert sum(s.startswith("INSERT INTO idempotency_keys") for s in statements) == 1
    assert sum(s.startswith("UPDATE idempotency_keys") for s in statements) == 1
    stored = client.get(f"{API}/adverse-events/{created.json()['id']}")
    assert stored.status_code == 200 and stored.json() == created.json()
    # the retry replays the stored response: the key's UPDATE on the driver stored it
    again = client.post(
        f"{API}/adverse-events",
        json={"patient_id": patient["id"], "term": "Nausea", "grade": 2, "grading_system": "CTCAE_v5"},
        headers={"Idempotency-Key": created.request.headers["Idempotency-Key"]},
    )
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == created.json()


def _engine(database_url: str) -> Any:
    return create_async_engine(database_url, poolclass=NullPool)


def test_a_failed_statement_is_raised_as_sqlalchemy_raised_it_and_nothing_is_kept(
    client: TestClient[Any], postgres: None, database_url: str
) -> None:
    """An adverse event naming a patient that is not there (another request deleted it after
    the check): IntegrityError with SQLSTATE 23503, an unknown reference; the key claimed
    before it in the same transaction is rolled back with it; the session goes on working."""
    actor, key = "driver-writes-test", f"k-{uuid.uuid4()}"
    claim = {"actor": actor, "key": key, "request_hash": "h", "status_code": 0, "response_body": ""}
    claim["created_at"] = models.utcnow()
    repository = AdverseEventRepository()
    insert = repository._insert
    row = repository.new_row({"patient_id": uuid.uuid4(), "term": "Nausea", "grade": 2})

    async def run() -> tuple[Any, int, int]:
        engine = _engine(database_url)
        try:
            async with AsyncSession(engine) as session:
                await session.begin()
                claimed = await driver_writes.execute(session, idempotency._CLAIM, claim)
                assert isinstance(claimed, driver_writes.Outcome) and claimed.rowcount == 1
                with pytest.raises(IntegrityError) as raised:
                    await driver_writes.execute(session, insert, row)
                await session.rollback()
                # the same session, a new transaction, on the driver again
                await session.begin()
                kept = (
                    await driver_writes.execute(session, idempotency._STORED, {"actor": actor, "key": key})
                ).rows
                again = await driver_writes.execute(session, idempotency._CLAIM, claim)
                await session.rollback()
            return raised.value, len(kept), again.rowcount
        finally:
            await engine.dispose()

    error, kept, again = asyncio.run(run())
    assert foreign_key_violation(error), error
    assert kept == 0  # the claim went with the failed transaction
    assert again == 1


def test_rows_and_counts_are_the_engines(client: TestClient[Any], postgres: None, database_url: str) -> None:
    """The same statements through the driver and through the connection: equal rows (by column
    name), equal row counts."""
    study = f.study(client)
    patient = f.patient(client, study["id"], genetic_findings=["FLT3-ITD"], age_years=41.5)
    patients = models.Patient.__table__  # type: ignore[attr-defined]
    actor = "driver-writes-counts"

    async def run() -> list[tuple[Any, Any]]:
        engine = _engine(database_url)
        pairs = []
        try:
            async with AsyncSession(engine) as session, session.begin():
                connection = await session.connection()
                for statement, params in [
                    (row_by_id(patients), {"id": uuid.UUID(patient["id"])}),
                    (row_by_id(patients), {"id": uuid.uuid4()}),
                    (
                        select(models.Study.__table__.c.lock).where(
                            models.Study.__table__.c.id == bindparam("id")
                        ),
                        {"id": uuid.UUID(study["id"])},
                    ),
                ]:
                    driver = await driver_writes.execute(session, statement, params)
                    engine_result = (await connection.execute(statement, params)).all()
                    pairs.append(([r._asdict() for r in driver.rows], [r._asdict() for r in engine_result]))
                for n in range(2):  # the key claimed, then already claimed: 1, then 0
                    params = {
                        "actor": actor,
                        "key": f"k{n // 2}",
                        "request_hash": "h",
                        "status_code": 0,
                        "response_body": "",
                        "created_at": models.utcnow(),
                    }
                    pairs.append(
                        ((await driver_writes.execute(session, idempotency._CLAIM, params)).rowcount, 1 - n)
                    )
                remember = {"w_actor": actor, "w_key": "k0", "status_code": 201, "response_body": "{}"}
                pairs.append(
                    ((await driver_writes.execute(session, idempotency._REMEMBER, remember)).rowcount, 1)
                )
                remember["w_key"] = "nobody"
                pairs.append(
                    ((await driver_writes.execute(session, idempotency._REMEMBER, remember)).rowcount, 0)
                )
                await session.rollback()
        finally:
            await engine.dispose()
        return pairs

    for on_driver, expected in asyncio.run(run()):
        assert on_driver == expected


def test_what_needs_sqlalchemys_execution_stays_on_the_engine() -> None:
    """A parameter nobody gave (a column default SQLAlchemy would compute), a list to expand:
    not compiled for the driver. A constant bound in the statement is carried."""
    dialect = asyncpg_dialect.dialect()
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("name", String, default="unnamed")
    )
    assert driver_writes.compiled_for_driver(dialect, table.insert(), frozenset({"id"})) is None
    assert driver_writes.compiled_for_driver(dialect, table.insert(), frozenset({"id", "name"})) is not None
    expanding = select(table.c.id).where(table.c.id.in_(bindparam("ids", expanding=True)))
    assert driver_writes.compiled_for_driver(dialect, expanding, frozenset({"ids"})) is None
    required = select(table.c.id).where(table.c.id == bindparam("id"))
    assert driver_writes.compiled_for_driver(dialect, required, frozenset()) is None
    lock = driver_writes.compiled_for_driver(dialect, trail._CHAIN_HEAD, frozenset())
    assert lock is not None and lock.arguments({}) == [trail.CHAIN_LOCK]
    constant = text("SELECT :a + :b").bindparams(a=1)
    compiled = driver_writes.compiled_for_driver(dialect, constant, frozenset({"b"}))
    assert compiled is not None and compiled.arguments({"b": 2}) == [1, 2]


_EVENTS = st.fixed_dictionaries(
    {
        "term": st.sampled_from(["Nausea", "febrile neutropenia", "CRS", "x" * 201]),
        "grade": st.one_of(st.none(), st.integers(0, 6)),
        "outcome": st.sampled_from([None, "resolved", "fatal", "ongoing", "unknown-word"]),
        "onset_day": st.one_of(st.none(), st.integers(-3, 40)),
        "resolution_day": st.one_of(st.none(), st.integers(-3, 40)),
    },
    optional={"grade_text": st.sampled_from(["2-3", "not graded"])},
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_EVENTS, known_patient=st.booleans(), retried=st.booleans())
def test_any_adverse_event_answers_as_through_the_engine(
    client: TestClient[Any],
    postgres: None,
    monkeypatch: pytest.MonkeyPatch,
    body: dict[str, Any],
    known_patient: bool,
    retried: bool,
) -> None:
    """Valid or not (a grade out of range, a fatal event not grade 5, days out of order, an
    unknown patient, a retried key): the same status and the same problem or record, with or
    without the driver; and nothing is left of a refused create on either path."""
    patient = f.patient(client, f.study(client)["id"])
    body = {**body, "patient_id": patient["id"] if known_patient else str(uuid.uuid4())}

    def send() -> tuple[int, Any, int]:
        key = f"prop-{uuid.uuid4()}"
        answer = client.post(f"{API}/adverse-events", json=body, headers={"Idempotency-Key": key})
        if retried:
            again = client.post(f"{API}/adverse-events", json=body, headers={"Idempotency-Key": key})
            assert (again.status_code, again.content) == (answer.status_code, answer.content)
        content = answer.json()
        if isinstance(content, dict):
            content = {k: v for k, v in content.items() if k not in VOLATILE | {"instance", "request_id"}}
        stored = client.get(f"{API}/adverse-events", params={"patient_id": patient["id"]}).json()["total"]
        return answer.status_code, content, stored

    on_driver = send()
    with engine_path(monkeypatch):
        # the second create of the same event for the same patient: one more stored if it was
        # stored the first time
        status, content, stored = send()
    assert (status, content) == on_driver[:2]
    assert stored == on_driver[2] * 2
    assert on_driver[2] == (1 if on_driver[0] == 201 else 0)
