"""Schemathesis against the committed contract, on the in-process app, on each database.

All default checks run, negative-data rejection included; settings are in schemathesis.toml.
Each generated case is sent to the app on every database in turn (`repeated` says which cases
`make test` leaves to the first one); `make contract` sends every case everywhere, with more
generated examples."""

import os
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.contract.asgi import CONTRACT, Target, app, client, target_on
from tests.databases import backends

CASES: dict[str, int] = {}
schema = schemathesis.openapi.from_path(str(CONTRACT))
schema.app = app
FULL = os.environ.get("CONTRACT_FULL") == "1"


@pytest.fixture(scope="module")
def contract_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Target]]:
    """The app on every database, the first one (SQLite) first."""
    with ExitStack() as stack:
        targets = [target_on(backend, stack, tmp_path_factory) for backend in backends()]
        CASES.update(
            dict.fromkeys([*(f"on {b}" for b in backends()), "refused before a handler, not repeated"], 0)
        )
        app.target = targets[0]
        with client:
            yield targets
        app.target = None
        print("".join(f"\nschemathesis stateless: {n} cases {where}" for where, n in CASES.items()))


# Refused before any handler runs: the body, a parameter or a header did not decode (400), or no
# route has the method (405).
REFUSED_BEFORE_A_HANDLER = frozenset({400, 405})


def repeated(case: schemathesis.Case, first: int) -> bool:
    """Whether `case`, answered `first` by the app on the first database, goes to the others too.

    Every case does, but for the coverage phase's negative cases (one value the schema forbids,
    the rest valid) refused before a handler ran: their answer comes from the request's decoding
    and routing, which no database takes part in (10,481 of the 14,696 negative cases at this
    contract; `pytest -s` prints the count). The others (401, 404, 409, 422, and 2xx where a
    forbidden value survives the URL, e.g. a number for a string) reach the app's logic and go
    to every database.
    `make contract` (CONTRACT_FULL=1) sends every case everywhere."""
    if FULL or case.meta is None or first not in REFUSED_BEFORE_A_HANDLER:
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
    first = 0
    for target in contract_apps:
        if first and not repeated(case, first):
            CASES["refused before a handler, not repeated"] += 1
            break
        app.target = target
        CASES[f"on {target.backend}"] += 1
        try:
            response = case.call_and_validate(session=client)
        except Exception as failure:
            failure.add_note(f"on {target.backend}")
            raise
        app.observe(response)
        first = first or response.status_code
