"""One ASGI entry point for schemathesis whose target app the fixtures switch per database.

`schemathesis.pytest.from_fixture` fails on pytest 9 ('Function' object has no attribute
'_nodeid'), so the committed schema is loaded at import with this delegate as its app."""

from typing import Any

from litestar import Litestar


class SwitchableApp:
    def __init__(self) -> None:
        self.target: Litestar | None = None
        self.database_url = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.target is not None, "no app selected: use the contract_app fixture"
        await self.target(scope, receive, send)
