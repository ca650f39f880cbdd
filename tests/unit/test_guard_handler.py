"""Guards get the route handler itself, not a copy made per request (service.auth.middleware),
and still decide: a guard that refuses answers 403 before the handler runs."""

from typing import Any

from litestar import Litestar, get
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.testing import TestClient

from service.auth.middleware import authentication


def test_a_guard_gets_the_handler_itself_and_still_refuses() -> None:
    authentication()  # what the app's creation does
    seen: list[BaseRouteHandler] = []
    ran: list[str] = []

    async def spy(_connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        seen.append(handler)

    async def refuse(_connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        raise PermissionDeniedException(detail="no")

    @get("/open", guards=[spy], sync_to_thread=False)
    def open_route() -> str:
        ran.append("open")
        return "ok"

    @get("/shut", guards=[spy, refuse], sync_to_thread=False)
    def shut_route() -> str:
        ran.append("shut")
        return "no"

    with TestClient(Litestar([open_route, shut_route])) as client:
        assert client.get("/open").status_code == 200
        assert client.get("/open").status_code == 200
        assert client.get("/shut").status_code == 403
    assert ran == ["open", "open"]
    assert len(seen) == 3
    assert seen[0] is seen[1], "a copy of the handler per request"
    assert seen[0].paths == {"/open"} and seen[2].paths == {"/shut"}
