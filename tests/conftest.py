from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings
from tests.audit_ledger import TOTALS, AuditLedger, counter_in_portal
from tests.databases import backends, empty_tables, fresh_database, issue_token


@pytest.fixture(scope="session", params=backends())
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per backend for the whole run."""
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


class RegistryTestClient(TestClient):  # type: ignore[type-arg]
    """Sends the record's current ETag in If-Match, and a reason in X-Change-Reason, on PATCH and
    DELETE unless the test sets the header itself: tests about other behaviour need not read
    before each write, and the precondition and audit tests pass their own. Each successful
    write is checked against the audit trail (tests/audit_ledger.py)."""

    ledger: AuditLedger | None = None

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        headers = dict(kwargs.get("headers") or {})
        if method.upper() in ("PATCH", "DELETE") and not any(k.lower() == "if-match" for k in headers):
            auth = {k: v for k, v in headers.items() if k.lower() == "authorization"}
            current = super().request("GET", str(url).split("?")[0], headers=auth or None)
            if current.status_code == 200 and "etag" in current.headers:
                headers["If-Match"] = current.headers["etag"]
        if method.upper() in ("PATCH", "DELETE") and not any(k.lower() == "x-change-reason" for k in headers):
            headers["X-Change-Reason"] = "test"
        if method.upper() in ("PATCH", "DELETE"):
            kwargs["headers"] = headers
        response = super().request(method, url, **kwargs)
        if self.ledger is not None:
            replayed = response.headers.get("idempotent-replayed") == "true"
            self.ledger.observe(method, str(url), response.status_code, response.content, replayed)
        return response


@pytest.fixture(scope="session")
def session_client(database_url: str) -> Iterator[TestClient[Any]]:
    """A client holding an admin token (role-specific tests make their own tokens)."""
    secret = issue_token(database_url, "test-admin", "admin")
    app = create_app(Settings(database_url=database_url, rate_limit_per_minute=0))
    with RegistryTestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {secret}"
        client.ledger = AuditLedger(
            "integration", counter_in_portal(client.blocking_portal, app.state.session_factory)
        )
        yield client


def emptied(session_client: TestClient[Any], database_url: str) -> TestClient[Any]:
    """The session's client, on empty tables."""
    empty_tables(database_url)
    # Emptied with plain DELETEs, not through the service: no audit record tells the analysis
    # store that the data changed (service.caching).
    session_client.app.state.analysis_answers.clear()
    return session_client


@pytest.fixture
def client(session_client: TestClient[Any], database_url: str) -> TestClient[Any]:
    """A client on empty tables."""
    return emptied(session_client, database_url)


@pytest.fixture
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgres"


@pytest.fixture(scope="session")
def tmp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("work")


def pytest_configure(config: pytest.Config) -> None:
    """With REQUIRE_POSTGRES=1 (CI), an unreachable Postgres fails the run instead of skipping."""
    import asyncio
    import gc

    from tests.databases import POSTGRES_URL, REQUIRE_POSTGRES, _admin

    # A test process holds hundreds of megabytes of live objects (the contract's generated cases,
    # the apps), and at the default thresholds the collector walked them some sixty times a run,
    # up to 3 s each: about a tenth of each worker's time. Young collections a few times rarer
    # still free the cycles the tests make (measured: the collector's time in four integration
    # modules 7.6 s -> 2.9 s, peak memory 337 -> 441 MB).
    gc.set_threshold(50_000, 20, 50)
    if not REQUIRE_POSTGRES:
        return
    try:
        if not POSTGRES_URL:
            raise RuntimeError("TEST_POSTGRES_URL is not set")
        asyncio.run(_admin(POSTGRES_URL, "SELECT 1"))
    except Exception as exc:
        pytest.exit(f"Postgres is required (REQUIRE_POSTGRES=1) but unreachable: {exc}", returncode=3)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TOTALS:
        terminalreporter.write_line(
            "audit trail: "
            + ", ".join(f"{count} {what}" for what, count in sorted(TOTALS.items()))
            + ": each had exactly its matching audit record(s)"
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under pytest-xdist each worker hands its audit-trail totals to the controller.
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["audit_totals"] = dict(TOTALS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    TOTALS.update(getattr(node, "workeroutput", {}).get("audit_totals", {}))
