"""Schemathesis against the committed contract, on the in-process app, on each database.

All default checks run, negative-data rejection included; settings are in schemathesis.toml."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import ASGIClient, get_client

from service.app import create_app
from service.settings import Settings
from tests.audit_ledger import AuditLedger, counter_for_url
from tests.contract.asgi import SwitchableApp
from tests.databases import backends, fresh_database, issue_token

CONTRACT = Path(__file__).parents[2] / "openapi" / "openapi.json"
app = SwitchableApp()
CASES: dict[str, int] = {}
# One in-process client for every call, as a network run keeps one session: without it each call
# builds a requests session and reads the process environment for proxies (4 % of a profiled run).
client: ASGIClient = get_client(app)
client.trust_env = False
schema = schemathesis.openapi.from_path(str(CONTRACT))
schema.app = app


@pytest.fixture(scope="module", params=backends())
def contract_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(request.param, tmp_path_factory.mktemp("contract")) as url:
        issue_token(url, "contract-admin", "admin", secret=os.environ["REGISTRY_TEST_TOKEN"])
        app.target = create_app(Settings(database_url=url, rate_limit_per_minute=0))
        app.database_url = url
        app.ledger = AuditLedger(f"contract ({request.param})", counter_for_url(url))
        CASES[request.param] = 0
        with client:
            yield request.param
        app.target = None
        if CASES[request.param]:  # reported with `pytest -s`; the stateful module reuses this fixture
            print(f"\nschemathesis stateless: {CASES[request.param]} cases on {request.param}")


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("CONTRACT_EXAMPLES", "20")),
    suppress_health_check=list(HealthCheck),
    deadline=None,
)
def test_operation_conforms(case: schemathesis.Case, contract_app: str) -> None:
    CASES[contract_app] += 1
    app.observe(case.call_and_validate(session=client))
