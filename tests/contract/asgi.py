"""One ASGI entry point for schemathesis whose target app the fixtures switch per database.

`schemathesis.pytest.from_fixture` fails on pytest 9 ('Function' object has no attribute
'_nodeid'), so the committed schema is loaded at import with this delegate as its app."""

from typing import Any

from litestar import Litestar
from schemathesis.core.transport import Response

from tests.audit_ledger import AuditLedger


class SwitchableApp:
    def __init__(self) -> None:
        self.target: Litestar | None = None
        self.database_url = ""
        self.ledger: AuditLedger | None = None

    def observe(self, response: Response) -> None:
        """Check a successful write against the audit trail of the selected database."""
        assert self.ledger is not None, "no app selected: use the contract_app fixture"
        replayed = "true" in response.headers.get("idempotent-replayed", [])
        method = response.request.method or ""
        self.ledger.observe(
            method, response.request.url or "", response.status_code, response.content, replayed
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.target is not None, "no app selected: use the contract_app fixture"
        await self.target(scope, receive, send)
