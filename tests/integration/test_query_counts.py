"""List endpoints load a page in a fixed number of statements, whatever its size (no N+1)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import event

from service.db import driver_reads
from tests import factories as f

API = "/api/v1"


@contextmanager
def counted(client: TestClient[Any]) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = client.app.state.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    # One record's read on Postgres goes to the driver, past the engine's events.
    driver_reads.observers.append(statements.append)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
        driver_reads.observers.remove(statements.append)


def _statements_for(client: TestClient[Any], path: str) -> int:
    client.get(path)  # warm the caches
    with counted(client) as statements:
        assert client.get(path).status_code == 200
    # The token lookup is cached for TOKEN_CACHE_SECONDS, so on a loaded machine the cache can
    # expire between the two requests: it is the caller's cost, not the page's, and is not counted.
    return len(
        [s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM api_tokens" not in s]
    )


@pytest.mark.parametrize(
    "collection", ["studies", "arms", "patients", "treatments", "adverse-events", "outcomes"]
)
def test_list_statement_count_does_not_grow_with_the_page(client: TestClient[Any], collection: str) -> None:
    study = f.study(client)
    agent = f.agent(client)
    arm = f.arm(client, study["id"], agent_ids=[agent["id"]])

    def add_one(i: int) -> None:
        patient = f.patient(client, study["id"], subject_code=f"P{i}", arm_id=arm["id"])
        f.treatment(client, patient["id"], components=[{"agent_id": agent["id"]}])
        f.adverse_event(client, patient["id"])
        f.response(client, patient["id"])
        f.arm(client, study["id"], label=f"extra {i}", agent_ids=[agent["id"]])
        f.study(client, title=f"extra {i}")

    add_one(0)
    small = _statements_for(client, f"{API}/{collection}")
    for i in range(1, 12):
        add_one(i)
    large = _statements_for(client, f"{API}/{collection}")
    assert large == small, f"{collection}: {small} statements for one item, {large} for twelve"


def test_a_patient_page_with_its_records_is_a_fixed_number_of_statements(client: TestClient[Any]) -> None:
    study = f.study(client)
    agent = f.agent(client)
    include = "treatments,adverse_events,outcomes"
    path = f"{API}/patients?study_id={study['id']}&include={include}"

    def add_one(i: int) -> None:
        patient = f.patient(client, study["id"], subject_code=f"P{i}")
        f.treatment(client, patient["id"], components=[{"agent_id": agent["id"]}])
        for grade in (1, 3):
            f.adverse_event(client, patient["id"], grade=grade)
        f.response(client, patient["id"])

    add_one(0)
    small = _statements_for(client, path)
    for i in range(1, 12):
        add_one(i)
    large = _statements_for(client, path)
    assert large == small, f"{small} statements for one patient, {large} for twelve"
    # And the records are each patient's own, the same as their own lists give.
    page = client.get(path).json()
    assert page["total"] == 12
    for item in page["items"]:
        for kind, collection in (
            ("treatments", "treatments"),
            ("adverse_events", "adverse-events"),
            ("outcomes", "outcomes"),
        ):
            own = client.get(f"{API}/{collection}", params={"patient_id": item["id"]}).json()["items"]
            assert item[kind] == own, kind
    # Only what was asked for is carried; without include=, nothing is.
    only = client.get(f"{API}/patients?study_id={study['id']}&include=outcomes").json()["items"][0]
    assert "outcomes" in only and "treatments" not in only and "adverse_events" not in only
    plain = client.get(f"{API}/patients?study_id={study['id']}").json()["items"][0]
    assert not {"outcomes", "treatments", "adverse_events"} & set(plain)
    assert client.get(f"{API}/patients?include=arms").status_code == 400


def test_fields_chooses_what_each_listed_item_carries(client: TestClient[Any]) -> None:
    study = f.study(client)
    patient = f.patient(client, study["id"], age_years=41)
    f.response(client, patient["id"])
    listed = client.get(
        f"{API}/patients", params={"study_id": study["id"], "fields": "subject_code,age_years"}
    )
    assert listed.status_code == 200
    assert listed.json()["items"] == [{"id": patient["id"], "subject_code": "P1", "age_years": 41}]
    assert listed.json()["total"] == 1
    with_records = client.get(
        f"{API}/patients", params={"study_id": study["id"], "fields": "subject_code", "include": "outcomes"}
    ).json()["items"][0]
    assert set(with_records) == {"id", "subject_code", "outcomes"} and len(with_records["outcomes"]) == 1
    # Fields of any outcome kind may be chosen on the outcome list; unknown names are refused.
    outcomes = client.get(f"{API}/outcomes", params={"patient_id": patient["id"], "fields": "kind,category"})
    assert outcomes.status_code == 200, outcomes.text
    assert [set(o) for o in outcomes.json()["items"]] == [{"id", "kind", "category"}]
    refused = client.get(f"{API}/patients", params={"fields": "subject_code,mrn"})
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "fields"


def test_record_reads_on_postgres_send_no_transaction_and_the_rest_keep_theirs(
    client: TestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At READ COMMITTED each statement reads its own snapshot, in a transaction or not: reading
    a record or a page skips BEGIN and COMMIT (two of the three round trips of reading a
    patient). Analyses stream their rows through a server-side cursor, which needs a
    transaction, and writes need theirs: both keep it."""
    if client.app.state.engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps its read transaction: one snapshot for all of a read's statements")
    import asyncpg

    sent: list[str] = []
    original = asyncpg.connection.Connection.execute

    async def execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query.split()[0].upper().rstrip(";"))
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "execute", execute)
    study = f.study(client)
    patient = f.patient(client, study["id"])
    event = f.adverse_event(client, patient["id"])

    def sends(method: str, path: str, **kwargs: Any) -> list[str]:
        client.request(method, path, **kwargs)  # warm the caches
        sent.clear()
        assert client.request(method, path, **kwargs).status_code < 300, path
        return list(sent)

    transaction = {"BEGIN", "COMMIT", "ROLLBACK"}
    for path in (
        f"{API}/patients/{patient['id']}",
        f"{API}/patients?study_id={study['id']}",
        f"{API}/patients?study_id={study['id']}&include=adverse_events",
        f"{API}/adverse-events/{event['id']}",
        f"{API}/studies",
    ):
        assert not transaction & set(sends("GET", path)), path
        assert not transaction & set(sends("HEAD", path)), path
    for path in (
        f"{API}/studies/{study['id']}/survival",
        f"{API}/studies/{study['id']}/adverse-event-incidence",
    ):
        # (a repeat is served from the analysis store after a version lookup in a transaction)
        assert "BEGIN" in sends("GET", path), path
    sent.clear()
    f.adverse_event(client, patient["id"])
    assert {"BEGIN", "COMMIT"} <= set(sent), sent
