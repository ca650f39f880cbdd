"""One ASGI entry point for schemathesis whose target app the fixtures switch per database.

`schemathesis.pytest.from_fixture` fails on pytest 9 ('Function' object has no attribute
'_nodeid'), so the committed schema is loaded at import with this delegate as its app."""

from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from schemathesis.core.transport import Response

from tests.audit_ledger import AuditLedger


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
