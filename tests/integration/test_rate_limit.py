"""The per-token rate limit: a token over its limit gets 429 problem+json with Retry-After and
changes nothing; other tokens, the health check and the docs are not held back; the window
resets."""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import litestar.middleware.rate_limit
import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings
from tests.databases import issue_token

LIMIT = 3
STUDIES = "/api/v1/studies"


@pytest.fixture
def limited(client: TestClient[Any], database_url: str) -> Iterator[tuple[TestClient[Any], dict[str, str]]]:
    """An app allowing LIMIT requests a minute per token, and two curator tokens."""
    suffix = uuid.uuid4().hex[:8]
    tokens = {
        name: f"Bearer {issue_token(database_url, f'{name}-{suffix}', 'curator')}"
        for name in ("first", "second")
    }
    with TestClient(create_app(Settings(database_url=database_url, rate_limit_per_minute=LIMIT))) as limited:
        yield limited, tokens


def test_a_token_over_its_limit_gets_429_with_retry_after(
    limited: tuple[TestClient[Any], dict[str, str]],
) -> None:
    client, tokens = limited
    first = {"Authorization": tokens["first"]}
    allowed = [client.get(STUDIES, headers=first) for _ in range(LIMIT)]
    assert [r.status_code for r in allowed] == [200] * LIMIT
    assert [r.headers["RateLimit-Remaining"] for r in allowed] == [
        str(LIMIT - n) for n in range(1, LIMIT + 1)
    ]

    refused = client.post(STUDIES, headers=first, json={"title": "Over the limit", "design": "case_series"})
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "/problems/rate-limited" and str(LIMIT) in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60

    # The refused create changed nothing; another token is counted on its own.
    listing = client.get(STUDIES, headers={"Authorization": tokens["second"]})
    assert listing.status_code == 200 and listing.json()["items"] == []
    # Open paths are never counted, and a request without a token is still 401, not 429.
    assert all(client.get("/health").status_code == 200 for _ in range(LIMIT + 2))
    assert client.get(STUDIES).status_code == 401


def test_the_window_resets(
    limited: tuple[TestClient[Any], dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, tokens = limited
    first = {"Authorization": tokens["first"]}
    for _ in range(LIMIT):
        assert client.get(STUDIES, headers=first).status_code == 200
    assert client.get(STUDIES, headers=first).status_code == 429
    later = time.time() + 61
    monkeypatch.setattr(litestar.middleware.rate_limit, "time", lambda: later)
    assert client.get(STUDIES, headers=first).status_code == 200


def test_no_limit_when_turned_off(client: TestClient[Any]) -> None:
    # The shared test client runs with RATE_LIMIT_PER_MINUTE=0: no counting, no headers.
    responses = [client.get(STUDIES) for _ in range(20)]
    assert {r.status_code for r in responses} == {200}
    assert "RateLimit-Limit" not in responses[-1].headers


def test_settings_read_the_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "42")
    assert Settings.from_env().rate_limit_per_minute == 42
    monkeypatch.delenv("RATE_LIMIT_PER_MINUTE")
    assert Settings.from_env().rate_limit_per_minute == 600
