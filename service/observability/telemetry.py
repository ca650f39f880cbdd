"""Around every HTTP request: its request id, its access-log line and its metrics.

- `X-Request-ID`: a well-formed id from the client (or the proxy in front) is kept, anything
  else is replaced by a new one; it is echoed on the response and bound to the logging context,
  so every line logged while serving the request carries it.
- The access line: method, route template, status and latency. Never the raw path's query
  string (it may carry a token or clinical free text), headers or bodies.

It wraps Litestar's own ASGI handler (routing and the exception handlers inside it), so 404s of
unknown paths and errors turned into problem responses are seen with their final status."""

import logging
import os
import re
import time

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncEngine

from service.observability import metrics

log = logging.getLogger("service.access")

REQUEST_ID_HEADER = b"x-request-id"
# Long enough for a UUID, a trace id or a proxy's id; nothing that could forge a log field.
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _WELL_FORMED.fullmatch(value):
            return value.decode()
    # 128 random bits as 32 hex digits, as uuid4().hex gives, without building a UUID object.
    return os.urandom(16).hex()


def telemetry(app: ASGIApp, engine: AsyncEngine) -> ASGIApp:
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = _request_id(scope)
        echoed = (REQUEST_ID_HEADER, request_id.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope["method"]
            route = scope.get("path_template") or metrics.UNMATCHED
            metrics.observe_request(method, route, status, seconds)
            metrics.sample_pool(engine)
            log.log(
                logging.WARNING if status >= 500 else logging.INFO,
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
            structlog.contextvars.reset_contextvars(**bound)

    return handle
