"""Schemathesis against the committed contract, on the in-process app, on each database.

All default checks run, negative-data rejection included; settings are in schemathesis.toml.
Each generated case is sent to the app on every database in turn (`sent_to` says which cases
`make test` leaves to the first one); `make contract` sends every case everywhere, with more
generated examples."""

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import ASGIClient, get_client

from service.app import create_app
from service.settings import Settings
from tests.audit_ledger import AuditLedger, counter_for_url
from tests.contract.asgi import SwitchableApp, Target
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
FULL = os.environ.get("CONTRACT_FULL") == "1"


def _target(backend: str, stack: ExitStack, tmp_path_factory: pytest.TempPathFactory) -> Target:
    url = stack.enter_context(fresh_database(backend, tmp_path_factory.mktemp("contract")))
    issue_token(url, "contract-admin", "admin", secret=os.environ["REGISTRY_TEST_TOKEN"])
    return Target(
        backend,
        create_app(Settings(database_url=url, rate_limit_per_minute=0)),
        url,
        AuditLedger(f"contract ({backend})", counter_for_url(url)),
    )


@pytest.fixture(scope="module", params=backends())
def contract_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on one database at a time (the stateful run)."""
    with ExitStack() as stack:
        app.target = _target(request.param, stack, tmp_path_factory)
        with client:
            yield request.param
        app.target = None


@pytest.fixture(scope="module")
def contract_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Target]]:
    """The app on every database, the first one (SQLite) first."""
    with ExitStack() as stack:
        targets = [_target(backend, stack, tmp_path_factory) for backend in backends()]
        CASES.update(dict.fromkeys(backends(), 0))
        app.target = targets[0]
        with client:
            yield targets
        app.target = None
        print("".join(f"\nschemathesis stateless: {n} cases on {backend}" for backend, n in CASES.items()))


def sent_to(case: schemathesis.Case, target: Target, first: Target) -> bool:
    """Whether this run sends `case` to `target`'s app.

    The coverage phase's negative cases (one value the schema forbids, the rest valid: 14,696 of
    the 20,968 coverage cases at this contract) are refused while the request is decoded — path,
    query, headers, body — before a handler runs, so the database behind the app has no part in
    them. `make test` sends them to the first database (SQLite, which every run has); positive
    boundary cases and the generated examples go to every database."""
    if FULL or target is first or case.meta is None:
        return True
    return not (case.meta.phase.name == "coverage" and case.meta.generation.mode == "negative")


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("CONTRACT_EXAMPLES", "20")),
    suppress_health_check=list(HealthCheck),
    deadline=None,
)
def test_operation_conforms(case: schemathesis.Case, contract_apps: list[Target]) -> None:
    # One case, every database: Hypothesis draws and runs it once, the apps answer it in turn.
    for target in contract_apps:
        if not sent_to(case, target, contract_apps[0]):
            continue
        app.target = target
        CASES[target.backend] += 1
        try:
            app.observe(case.call_and_validate(session=client))
        except Exception as failure:
            failure.add_note(f"on {target.backend}")
            raise
