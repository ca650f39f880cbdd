"""ETags and If-Match: 428 without it, 412 when stale, and no lost update under concurrency."""

from typing import Any

from litestar.testing import TestClient

from tests import factories as f
from tests.replicas import race

API = "/api/v1"


def test_item_responses_carry_the_version_as_etag(client: TestClient[Any]) -> None:
    created = client.post(f"{API}/studies", json={"title": "T", "design": "other"})
    assert created.headers["etag"] == '"1"'
    url = f"{API}/studies/{created.json()['id']}"
    assert client.get(url).headers["etag"] == '"1"'
    changed = client.patch(url, json={"title": "U"}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"'


def test_missing_if_match_is_428_and_stale_is_412(client: TestClient[Any]) -> None:
    study = f.study(client)
    url = f"{API}/studies/{study['id']}"
    missing = client.patch(url, json={"title": "U"}, headers={"If-Match": ""})
    assert missing.status_code == 428 and missing.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert client.patch(url, json={"title": "U"}, headers={"If-Match": '"1"'}).status_code == 200
    stale = client.patch(url, json={"title": "V"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.headers["etag"] == '"2"'
    assert client.delete(url, headers={"If-Match": '"1"'}).status_code == 412
    assert client.delete(url, headers={"If-Match": ""}).status_code == 428
    assert client.get(url).json()["title"] == "U"
    assert client.delete(url, headers={"If-Match": '"2"'}).status_code == 204


def test_star_matches_any_version(client: TestClient[Any]) -> None:
    study = f.study(client)
    assert (
        client.patch(
            f"{API}/studies/{study['id']}", json={"title": "W"}, headers={"If-Match": "*"}
        ).status_code
        == 200
    )


def test_concurrent_patches_with_one_etag_make_exactly_one_winner(
    client: TestClient[Any], database_url: str
) -> None:
    study = f.study(client)
    url = f"{API}/studies/{study['id']}"
    token = client.headers["Authorization"]
    racers = 10
    results = race(
        database_url,
        racers,
        lambda replica, i: replica.patch(
            url, json={"title": f"writer {i}"}, headers={"Authorization": token, "If-Match": '"1"'}
        ),
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [412] * (racers - 1)
    winner = next(r for r in results if r.status_code == 200).json()["title"]
    final = client.get(url).json()
    assert final["title"] == winner and final["version"] == 2
