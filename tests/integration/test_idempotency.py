"""Idempotency-Key on POST: replay, conflict of bodies, and concurrent retries across replicas."""

from typing import Any

from litestar.testing import TestClient

from tests.replicas import race

API = "/api/v1"
BODY = {"title": "Once only", "design": "case_series"}


def test_a_retry_replays_the_first_response_and_creates_nothing(client: TestClient[Any]) -> None:
    first = client.post(f"{API}/studies", json=BODY, headers={"Idempotency-Key": "create-study-1"})
    again = client.post(f"{API}/studies", json=BODY, headers={"Idempotency-Key": "create-study-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true" and again.headers["etag"] == first.headers["etag"]
    assert client.get(f"{API}/studies").json()["total"] == 1


def test_the_same_key_with_another_body_is_422(client: TestClient[Any]) -> None:
    assert client.post(f"{API}/studies", json=BODY, headers={"Idempotency-Key": "k2"}).status_code == 201
    other = client.post(f"{API}/studies", json={**BODY, "title": "Else"}, headers={"Idempotency-Key": "k2"})
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert client.get(f"{API}/studies").json()["total"] == 1


def test_a_failed_request_does_not_burn_its_key(client: TestClient[Any]) -> None:
    bad = client.post(
        f"{API}/studies", json={**BODY, "start_date": "2024-02-30"}, headers={"Idempotency-Key": "k3"}
    )
    assert bad.status_code == 422
    # The failure rolled the key back with everything else: the corrected request may reuse it.
    fixed = client.post(f"{API}/studies", json=BODY, headers={"Idempotency-Key": "k3"})
    assert fixed.status_code == 201
    assert (
        client.post(f"{API}/studies", json=BODY, headers={"Idempotency-Key": "k3"}).json()["id"]
        == fixed.json()["id"]
    )
    assert client.get(f"{API}/studies").json()["total"] == 1


def test_concurrent_retries_across_replicas_create_one_record(
    client: TestClient[Any], database_url: str
) -> None:
    token = client.headers["Authorization"]
    results = race(
        database_url,
        6,
        lambda replica, _: replica.post(
            f"{API}/studies", json=BODY, headers={"Authorization": token, "Idempotency-Key": "race"}
        ),
    )
    assert {r.status_code for r in results} == {201}
    assert len({r.json()["id"] for r in results}) == 1
    assert client.get(f"{API}/studies").json()["total"] == 1
