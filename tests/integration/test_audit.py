"""The audit trail: one record per write with actor, old and new values and reason; history;
the admin listing; append-only in the database; and a hash chain that detects tampering."""

import asyncio
import itertools
import uuid
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import col, select

from service.__main__ import main
from service.audit import trail
from service.db.models import AuditRecord
from tests import factories as f
from tests.replicas import race

API = "/api/v1"


def _history(client: TestClient[Any], collection: str, id: str) -> list[dict[str, Any]]:
    response = client.get(f"{API}/{collection}/{id}/history", params={"limit": 500})
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == len(page["items"])
    return page["items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "collection, make, change",
    [
        ("studies", lambda c: f.study(c), {"title": "Renamed"}),
        ("patients", lambda c: f.patient(c, f.study(c)["id"]), {"age_years": 61}),
        ("adverse-events", lambda c: f.adverse_event(c, f.patient(c, f.study(c)["id"])["id"]), {"grade": 4}),
        ("outcomes", lambda c: f.response(c, f.patient(c, f.study(c)["id"])["id"]), {"study_day": 30}),
        ("agents", lambda c: f.agent(c), {"agent_class": "BCL-2 inhibitor"}),
    ],
)
def test_each_write_leaves_exactly_one_record(
    client: TestClient[Any], collection: str, make: Any, change: dict[str, Any]
) -> None:
    created = make(client)
    url = f"{API}/{collection}/{created['id']}"
    assert client.patch(url, json=change, headers={"X-Change-Reason": "source re-read"}).status_code == 200
    assert client.delete(url, headers={"X-Change-Reason": "duplicate entry"}).status_code == 204
    history = _history(client, collection, created["id"])
    assert [h["action"] for h in history] == ["create", "update", "delete"]
    assert {h["actor"] for h in history} == {"test-admin"} and {h["actor_role"] for h in history} == {"admin"}
    field, new = next(iter(change.items()))
    assert history[1]["changes"][field][1] == new and history[1]["reason"] == "source re-read"
    assert history[2]["reason"] == "duplicate entry" and history[2]["changes"]["id"] == [created["id"], None]
    assert all(h["recorded_at"].endswith(("+00:00", "Z")) for h in history)


def test_patient_level_changes_need_a_reason(client: TestClient[Any]) -> None:
    patient = f.patient(client, f.study(client)["id"])
    url = f"{API}/patients/{patient['id']}"
    missing = client.patch(url, json={"age_years": 50}, headers={"X-Change-Reason": ""})
    assert missing.status_code == 428 and "X-Change-Reason" in missing.json()["detail"]
    assert client.delete(url, headers={"X-Change-Reason": ""}).status_code == 428
    assert client.get(url).json()["version"] == 1
    study = f.study(client)
    assert (
        client.patch(
            f"{API}/studies/{study['id']}", json={"title": "x"}, headers={"X-Change-Reason": ""}
        ).status_code
        == 200
    )


def test_cascades_audit_every_deleted_record(client: TestClient[Any]) -> None:
    study = f.study(client)
    patient = f.patient(client, study["id"])
    event = f.adverse_event(client, patient["id"])
    assert client.delete(f"{API}/studies/{study['id']}?cascade=true").status_code == 204
    assert [h["action"] for h in _history(client, "adverse-events", event["id"])] == ["create", "delete"]
    assert [h["action"] for h in _history(client, "patients", patient["id"])] == ["create", "delete"]


def test_admin_lists_the_trail_with_filters(client: TestClient[Any], database_url: str) -> None:
    from tests.databases import issue_token

    study = f.study(client)
    listed = client.get(f"{API}/audit", params={"resource_type": "study", "resource_id": study["id"]}).json()
    assert listed["total"] == 1 and listed["items"][0]["action"] == "create"
    assert client.get(f"{API}/audit", params={"actor": "test-admin", "limit": 1}).json()["total"] >= 1
    curator = issue_token(database_url, "audit-curator", "curator")
    assert client.get(f"{API}/audit", headers={"Authorization": f"Bearer {curator}"}).status_code == 403
    assert (
        client.get(
            f"{API}/studies/{study['id']}/history", headers={"Authorization": f"Bearer {curator}"}
        ).status_code
        == 200
    )


def test_the_trail_filters_by_study_and_operation_and_streams_as_ndjson(
    client: TestClient[Any], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    first, second = f.study(client), f.study(client)
    patient = f.patient(client, first["id"])
    f.adverse_event(client, patient["id"])
    f.arm(client, second["id"])
    gone = client.delete(
        f"{API}/patients/{patient['id']}",
        params={"cascade": "true"},
        headers={"If-Match": '"1"', "X-Change-Reason": "entered twice"},
    )
    assert gone.status_code == 204
    of_first = client.get(f"{API}/audit", params={"study_id": first["id"], "limit": 500}).json()["items"]
    # the study, its patient and adverse event created, then both deleted by the cascade
    assert sorted((e["resource_type"], e["action"]) for e in of_first) == [
        ("adverse_event", "create"),
        ("adverse_event", "delete"),
        ("patient", "create"),
        ("patient", "delete"),
        ("study", "create"),
    ]
    deletes = client.get(f"{API}/audit", params={"study_id": first["id"], "action": "delete"}).json()
    assert deletes["total"] == 2
    streamed = client.get(f"{API}/audit/stream", params={"study_id": first["id"]})
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in streamed.text.splitlines()]
    assert [e["seq"] for e in lines] == [e["seq"] for e in of_first]
    everything = client.get(f"{API}/audit/stream").text.splitlines()
    assert len(everything) == client.get(f"{API}/audit", params={"limit": 1}).json()["total"]
    # the records that name their study still verify
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["audit", "verify"]) == 0


def _execute(url: str, statement: str) -> None:
    async def run() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_the_database_refuses_to_change_or_delete_audit_records(
    client: TestClient[Any], database_url: str
) -> None:
    f.study(client)
    for statement in ("UPDATE audit_records SET actor = 'someone else'", "DELETE FROM audit_records"):
        with pytest.raises(DBAPIError, match="append-only"):
            _execute(database_url, statement)


def test_hash_chain_verifies_and_detects_tampering(
    client: TestClient[Any],
    database_url: str,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    f.study(client, title="Before tampering")
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["audit", "verify"]) == 0
    assert "audit chain verified" in capsys.readouterr().out
    # Someone with database superuser rights goes around the trigger and edits a record.
    if backend == "postgres":
        _execute(database_url, "ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only")
        _execute(
            database_url,
            "UPDATE audit_records SET actor = 'someone else' WHERE seq = (SELECT max(seq) FROM audit_records)",
        )
        _execute(database_url, "ALTER TABLE audit_records ENABLE TRIGGER audit_records_append_only")
    else:
        _execute(database_url, "DROP TRIGGER audit_records_no_update")
        _execute(
            database_url,
            "UPDATE audit_records SET actor = 'someone else' WHERE seq = (SELECT max(seq) FROM audit_records)",
        )
        _execute(
            database_url,
            "CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records BEGIN SELECT RAISE(ABORT, 'audit records are append-only (UPDATE refused)'); END",
        )
    assert main(["audit", "verify"]) == 1
    assert "altered" in capsys.readouterr().err


def test_audit_time_filters_take_iso_dates_only(client: TestClient[Any]) -> None:
    f.study(client)
    assert (
        client.get(f"{API}/audit", params={"since": "2020-01-01", "until": "2999-12-31T00:00:00Z"}).json()[
            "total"
        ]
        >= 1
    )
    assert client.get(f"{API}/audit", params={"since": "2999-01-01"}).json()["total"] == 0
    assert client.get(f"{API}/audit", params={"until": "0.5"}).status_code == 400
    assert client.get(f"{API}/audit", params={"since": "2024-02-30"}).status_code == 422


def _fetch(url: str, statement: str) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                return list((await connection.execute(text(statement))).all())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_concurrent_writers_on_two_replicas_extend_one_chain(
    client: TestClient[Any], database_url: str, backend: str
) -> None:
    f.study(client, title="Chain start")
    (last_seq, last_hash) = _fetch(
        database_url, "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1"
    )[0]
    token = client.headers["Authorization"]
    writers = 12
    results = race(
        database_url,
        writers,
        lambda replica, i: replica.post(
            f"{API}/studies",
            json={"title": f"Concurrent {i}", "design": "case_series"},
            headers={"Authorization": token},
        ),
    )
    created = sorted(r.json()["id"] for r in results if r.status_code == 201)
    assert len(created) == writers, sorted(r.status_code for r in results)
    rows = _fetch(
        database_url,
        f"SELECT prev_hash, hash, resource_id, action FROM audit_records WHERE seq > {last_seq} ORDER BY seq",  # noqa: S608
    )
    assert sorted(str(uuid.UUID(str(r.resource_id))) for r in rows) == created
    assert {r.action for r in rows} == {"create"}
    # One chain, no fork: each new record names the one before it.
    previous = last_hash
    for row in rows:
        assert row.prev_hash == previous
        previous = row.hash


def test_a_cascade_delete_racing_child_creates_never_deadlocks(
    client: TestClient[Any],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The chain lock is taken last, at commit: a cascade delete (row locks on every child, then
    the chain) and creates of children (a key-share lock on their patient, then the chain) can
    wait for each other's rows, never for each other in a circle. With the chain lock taken at
    each audit record, 7-8 writes of such a race ended 503 (deadlock detected) on Postgres."""
    study = f.study(client)
    patients = [f.patient(client, study["id"], subject_code=f"P{i}")["id"] for i in range(6)]
    token = client.headers["Authorization"]
    (last_seq, last_hash) = _fetch(
        database_url, "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1"
    )[0]

    async def call(replica: Any, i: int) -> Any:
        if i == 0:
            await asyncio.sleep(0.01)
            return await replica.delete(
                f"{API}/studies/{study['id']}",
                params={"cascade": "true"},
                headers={"Authorization": token, "If-Match": "*"},
            )
        return await replica.post(
            f"{API}/outcomes",
            json={"kind": "event", "event_type": "relapse", "study_day": i, "patient_id": patients[i % 6]},
            headers={"Authorization": token},
        )

    results = race(database_url, 24, call)
    statuses = sorted(r.status_code for r in results)
    assert 503 not in statuses and 500 not in statuses, statuses
    assert results[0].status_code == 204, results[0].text
    # a create whose patient the delete removed after the create checked it: 422, never 409
    assert set(statuses) <= {201, 204, 404, 422}, statuses
    # the chain from before the race on is whole: each record names the one before, and its
    # content still gives its hash (earlier tests of this module tamper with older records)
    rows = _fetch(database_url, f"SELECT seq FROM audit_records WHERE seq > {last_seq} ORDER BY seq")  # noqa: S608
    chain = asyncio.run(_records_after(database_url, last_seq))
    assert len(chain) == len(rows) and chain[0].prev_hash == last_hash
    for before, record in itertools.pairwise(chain):
        assert record.prev_hash == before.hash
    assert all(trail.digest(record) == record.hash for record in chain)


async def _records_after(database_url: str, seq: int) -> list[Any]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with AsyncSession(engine) as session:
            query = select(AuditRecord).where(col(AuditRecord.seq) > seq).order_by(col(AuditRecord.seq))
            return list((await session.scalars(query)).all())
    finally:
        await engine.dispose()
