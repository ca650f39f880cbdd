"""One ASGI entry point for schemathesis whose target app the fixtures switch per database.

`schemathesis.pytest.from_fixture` fails on pytest 9 ('Function' object has no attribute
'_nodeid'), so the committed schema is loaded at import with this delegate as its app."""

import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from schemathesis.core.transport import Response
from schemathesis.python.asgi import ASGIClient, get_client

from service.app import create_app
from service.settings import Settings
from tests.audit_ledger import AuditLedger, counter_for_url
from tests.databases import fresh_database, issue_token

CONTRACT = Path(__file__).parents[2] / "openapi" / "openapi.json"


@dataclass(frozen=True)
class Target:
    """The app on one database, and the ledger its writes are checked against."""

    backend: str
    app: Litestar
    database_url: str
    ledger: AuditLedger


class SwitchableApp:
    def __init__(self) -> None:
        self.target: Target | None = None

    @property
    def database_url(self) -> str:
        assert self.target is not None, "no app selected: use a contract fixture"
        return self.target.database_url

    def observe(self, response: Response) -> None:
        """Check a successful write against the audit trail of the selected database."""
        assert self.target is not None, "no app selected: use a contract fixture"
        replayed = "true" in response.headers.get("idempotent-replayed", [])
        method = response.request.method or ""
        self.target.ledger.observe(
            method, response.request.url or "", response.status_code, response.content, replayed
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.target is not None, "no app selected: use a contract fixture"
        await self.target.app(scope, receive, send)


def target_on(backend: str, stack: ExitStack, tmp_path_factory: pytest.TempPathFactory) -> Target:
    """The app on a new database of `backend` (dropped when `stack` closes), with the admin token
    schemathesis.toml sends."""
    url = stack.enter_context(fresh_database(backend, tmp_path_factory.mktemp("contract")))
    issue_token(url, "contract-admin", "admin", secret=os.environ["REGISTRY_TEST_TOKEN"])
    return Target(
        backend,
        create_app(Settings(database_url=url, rate_limit_per_minute=0)),
        url,
        AuditLedger(f"contract ({backend})", counter_for_url(url)),
    )


app = SwitchableApp()
# One in-process client for every call, as a network run keeps one session: without it each call
# builds a requests session and reads the process environment for proxies (4 % of a profiled run).
client: ASGIClient = get_client(app)
client.trust_env = False
