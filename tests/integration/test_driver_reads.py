"""Reads of one record on Postgres go straight to the driver (service.db.driver_reads): the same
answer, byte for byte, as the engine's path gives, for every kind of record; one statement on
the driver per read; and a record outside the caller's scope still does not exist for it."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from litestar.testing import TestClient

from service.db import driver_reads
from tests import factories as f
from tests.databases import issue_token

API = "/api/v1"


@contextmanager
def sent_to_driver() -> Iterator[list[str]]:
    statements: list[str] = []
    driver_reads.observers.append(statements.append)
    try:
        yield statements
    finally:
        driver_reads.observers.remove(statements.append)


@contextmanager
def engine_path(client: TestClient[Any]) -> Iterator[None]:
    """The app reading as it did before, through SQLAlchemy's execute."""
    state = client.app.state
    driver, state.driver_reads = state.driver_reads, None
    try:
        yield
    finally:
        state.driver_reads = driver


@pytest.fixture
def records(client: TestClient[Any], backend: str) -> list[tuple[str, str]]:
    """(collection, id) of one record of each kind, two kinds of outcome."""
    if backend != "postgres":
        pytest.skip("reads on the driver are Postgres's (SQLite reads through the engine)")
    agent = f.agent(client)
    return [("agents", agent["id"])] + [
        (collection, body["id"]) for collection, body in f.one_of_each(client, agent)
    ]


def test_each_kind_of_record_reads_the_same_on_the_driver(
    client: TestClient[Any], records: list[tuple[str, str]]
) -> None:
    for collection, id in records:
        path = f"{API}/{collection}/{id}"
        with sent_to_driver() as statements:
            on_driver = client.get(path)
        assert on_driver.status_code == 200, (path, on_driver.text)
        assert len(statements) == 1 and statements[0].lstrip().startswith("SELECT"), (path, statements)
        with engine_path(client), sent_to_driver() as statements:
            on_engine = client.get(path)
        assert statements == []
        assert on_driver.content == on_engine.content, path
        assert on_driver.headers["etag"] == on_engine.headers["etag"]


def test_a_missing_record_is_404_on_the_driver(
    client: TestClient[Any], records: list[tuple[str, str]]
) -> None:
    missing = "0190b1f2-0000-7000-8000-000000000000"
    with sent_to_driver() as statements:
        answer = client.get(f"{API}/patients/{missing}")
    assert answer.status_code == 404 and answer.json()["status"] == 404
    assert len(statements) == 1


def test_a_record_outside_a_grant_is_not_read_on_the_driver(
    client: TestClient[Any], records: list[tuple[str, str]], database_url: str
) -> None:
    """A caller whose grants limit what it sees reads through the engine, where the scope's
    condition is added to the statement: another study's patient does not exist for it."""
    other = f.study(client, title="another centre's study")
    grant = client.post(
        f"{API}/tokens",
        json={"name": "other-study-reader", "grants": [{"study_id": other["id"], "role": "reader"}]},
    )
    assert grant.status_code == 201, grant.text
    headers = {"Authorization": f"Bearer {grant.json()['token']}"}
    with sent_to_driver() as statements:
        hidden = client.get(f"{API}/patients/{dict(records)['patients']}", headers=headers)
    assert hidden.status_code == 404
    assert statements == []
    # The same record read by an admin token on the driver.
    admin = {"Authorization": f"Bearer {issue_token(database_url, 'driver-admin', 'admin')}"}
    assert client.get(f"{API}/patients/{dict(records)['patients']}", headers=admin).status_code == 200
