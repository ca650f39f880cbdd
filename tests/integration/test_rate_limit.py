"""The per-token rate limit: a token over its limit gets 429 problem+json with Retry-After and
changes nothing; other tokens, the health check and the docs are not held back; the window
resets."""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.auth import middleware, rate_limit
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
    monkeypatch.setattr(rate_limit, "clock", lambda: later)
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


def test_guessing_tokens_from_one_address_is_refused_after_the_failure_limit(
    client: TestClient[Any], database_url: str
) -> None:
    settings = Settings(database_url=database_url, rate_limit_per_minute=LIMIT, auth_failures_per_minute=5)
    with TestClient(create_app(settings)) as limited:
        statuses = [
            limited.get(STUDIES, headers={"Authorization": f"Bearer lor_guess{i}"}).status_code
            for i in range(8)
        ]
        assert statuses == [401] * 5 + [429] * 3
        refused = limited.get(STUDIES, headers={"Authorization": "Bearer lor_guess-more"})
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert (
            "failed authentications" in refused.json()["detail"] and int(refused.headers["Retry-After"]) >= 1
        )
        # without a token at all nothing is guessed: still 401
        assert limited.get(STUDIES).status_code == 401


def test_an_unknown_token_is_looked_up_once_in_a_while_not_on_every_request(
    client: TestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    real = middleware._lookup

    async def counted(connection: Any, key: str) -> Any:
        lookups.append(key)
        return await real(connection, key)

    monkeypatch.setattr(middleware, "_lookup", counted)
    statuses = {
        client.get(STUDIES, headers={"Authorization": "Bearer lor_never-issued"}).status_code
        for _ in range(5)
    }
    assert statuses == {401} and len(lookups) == 1
