"""Fixtures of the exchange tests (tests/integration/test_exchange.py, test_fhir.py): the seed
dataset in a database of its own per backend, and an empty database to import into."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import RegistryTestClient
from tests.databases import fresh_database, issue_token
from tests.integration.test_seed import load


def _client(url: str, role: str = "curator") -> RegistryTestClient:
    client = RegistryTestClient(create_app(Settings(database_url=url, rate_limit_per_minute=0)))
    client.headers["Authorization"] = f"Bearer {issue_token(url, f'exchange-{uuid.uuid4().hex[:6]}', role)}"
    return client


@pytest.fixture(scope="module")
def seeded_source(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[TestClient[Any]]:
    """A database holding the seed dataset, per backend."""
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    with fresh_database(backend, tmp_path_factory.mktemp("source")) as url:
        load(url)
        with _client(url) as client:
            yield client


@pytest.fixture
def empty_target(backend: str, tmp_path: Path) -> Iterator[TestClient[Any]]:
    with fresh_database(backend, tmp_path) as url, _client(url, "admin") as client:
        yield client
