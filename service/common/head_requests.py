"""HEAD on every GET (RFC 9110 §9.3.2): the GET's status and headers, `Content-Length` included,
without its body. Litestar 2 routes HEAD only to handlers declared for it, so the request is
answered as the GET it mirrors, below the telemetry (which logs and counts it as HEAD) and above
the routing, authentication and rate limits (which apply as to the GET)."""

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send


def head_as_get(app: ASGIApp) -> ASGIApp:
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return
        http: HTTPScope = scope

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        http["method"] = "GET"
        try:
            await app(http, receive, without_body)
        finally:
            http["method"] = "HEAD"

    return handle
