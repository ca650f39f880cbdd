"""Domain errors and the one place that turns every error into RFC 9457 problem details."""

import logging
import re
import socket
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]
import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InterfaceError
from sqlalchemy.exc import TimeoutError as SATimeoutError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("service.errors")


class FieldError(msgspec.Struct, kw_only=True, omit_defaults=True):
    message: str
    field: str | None = None
    source: str | None = None
    # RFC 6901 JSON pointer into the body, where a body holds many records (study import).
    pointer: str | None = None


class ProblemDetails(msgspec.Struct, kw_only=True, omit_defaults=True):
    """RFC 9457 problem details; `errors` names each offending field."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] = []


class DomainError(Exception):
    status = 422
    slug = "rule-violation"
    title = "The request breaks a data rule"
    headers: dict[str, str] | None = None

    def __init__(
        self, detail: str, *, field: str | None = None, errors: list["FieldError"] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.errors = errors


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Resource not found"


class Forbidden(DomainError):
    """The identity can see the record but may not do this to it (its grants are narrower)."""

    status = 403
    slug = "forbidden"
    title = "Not allowed"


class Busy(DomainError):
    """Every worker for statistics and plots stayed busy for longer than the wait allowed."""

    status = 503
    slug = "busy"
    title = "The service is busy"
    headers = {"Retry-After": "5"}


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "The request conflicts with stored data"


class RuleViolation(DomainError):
    pass


class UnknownReference(DomainError):
    """A body names a record that does not exist: 422, since 404 would say the URL is wrong."""

    slug = "unknown-reference"
    title = "The body refers to a record that does not exist"


_TITLES = {
    400: ("invalid-request", "The request is malformed or fails validation"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Resource not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "The request conflicts with stored data"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("rule-violation", "The request breaks a data rule"),
    428: ("precondition-required", "Precondition required"),
    429: ("rate-limited", "Too many requests"),
    503: ("database-unavailable", "Database unavailable"),
}


def problem(
    request: Request[Any, Any, Any],
    status: int,
    detail: str | None,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ProblemDetails]:
    default_slug, default_title = _TITLES.get(status, ("error", "Error"))
    body = ProblemDetails(
        type=f"/problems/{slug or default_slug}",
        title=title or default_title,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors or [],
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(extra: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                errors.append(
                    FieldError(
                        message=str(item.get("message", "invalid value")),
                        field=(str(item["key"]) if item.get("key") is not None else None),
                        pointer=(str(item["pointer"]) if item.get("pointer") is not None else None),
                        # Litestar gives its ParamType enum (str() would say "ParamType.QUERY").
                        source=(
                            str(getattr(item["source"], "value", item["source"]))
                            if item.get("source") is not None
                            else None
                        ),
                    )
                )
    return errors


def _path_templates(app: Any) -> list[tuple[re.Pattern[str], list[str]]]:
    """Each route's path as a pattern whose UUID parameters match any segment, with their names."""
    cached = getattr(app.state, "_uuid_path_templates", None)
    if cached is None:
        cached = []
        for route in app.routes:
            names = re.findall(r"\{(\w+):uuid\}", route.path)
            if names:
                pattern = re.sub(r"\{(\w+):uuid\}", r"(?P<\1>[^/]+)", route.path)
                pattern = re.sub(r"\{\w+(:\w+)?\}", r"[^/]+", pattern)
                cached.append((re.compile(f"^{pattern}$"), names))
        app.state._uuid_path_templates = cached
    return cached


def _malformed_uuid(request: Request[Any, Any, Any]) -> str | None:
    """The path parameter that kept the path from matching its route because it is not a UUID."""
    for pattern, names in _path_templates(request.app):
        match = pattern.match(request.url.path)
        if match is None:
            continue
        for name in names:
            try:
                UUID(match.group(name))
            except ValueError:
                return name
    return None


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= 500:
        return handle_unexpected(request, exc)
    if status == 404 and isinstance(exc, NotFoundException) and exc.detail == "Not Found":
        # No route matched: say so when a path parameter is merely not a UUID.
        name = _malformed_uuid(request)
        if name is not None:
            message = f"path parameter `{name}` must be a UUID"
            return problem(
                request, 400, message, errors=[FieldError(message=message, field=name, source="path")]
            )
    errors = _validation_errors(exc.extra) if isinstance(exc, ValidationException) else []
    headers = {k: v for k, v in (exc.headers or {}).items()}
    detail = exc.detail
    if status == 400 and not errors:
        detail = detail or "Malformed request"
    return problem(request, status, detail, errors=errors, headers=headers or None)


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    if exc.errors:
        errors = exc.errors
    else:
        errors = [FieldError(message=exc.detail, field=exc.field, source="body")] if exc.field else []
    return problem(
        request, exc.status, exc.detail, slug=exc.slug, title=exc.title, errors=errors, headers=exc.headers
    )


def handle_integrity_error(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[Any]:
    # The database caught what the services did not; its message may carry SQL, so it stays in
    # the log and the client gets a plain statement. Only the first line is logged: Postgres
    # puts the offending row, free text included, in the DETAIL line after it.
    log.info("integrity error on %s %s: %s", request.method, request.url.path, _first_line(exc.orig or exc))
    return problem(request, 409, "The change conflicts with existing data (a uniqueness or reference rule).")


def _first_line(exc: BaseException) -> str:
    """Exception class and the first line of its message, cut short: enough to tell a deadlock
    from a timeout from a lost connection, without the SQL, parameters or row details that
    drivers put on later lines."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {text[0][:200] if text else ''}"


def handle_database_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # Timeouts (statement, command, connect, pool), refused or lost connections: the request may
    # succeed later, so 503 with Retry-After. Drivers' messages can quote SQL, so only the log
    # sees them, and only their first line.
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    log.warning("database error on %s %s: %s", request.method, request.url.path, _first_line(cause))
    return problem(
        request,
        503,
        "The database did not answer in time or is unavailable; try again later.",
        slug="database-unavailable",
        title="Database unavailable",
        headers={"Retry-After": "5"},
    )


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(
        ProblemDetails(
            type="/problems/internal-error",
            title="Internal server error",
            status=500,
            detail="The server failed to handle the request; it has been logged.",
            instance=request.url.path,
        ),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        media_type=PROBLEM_JSON,
    )


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Everything not mapped above: database outages that do not surface as a DBAPIError (a
    refused connection is an OSError from the driver's connect, a frozen server a TimeoutError,
    an exhausted pool SQLAlchemy's TimeoutError) are 503; the rest is a logged 500."""
    # Connection failures only: a plain OSError is what asyncio raises when every address of the
    # server refused; its subclasses such as FileNotFoundError are the service's own faults (500).
    outage = (
        ConnectionError
        | TimeoutError
        | socket.gaierror
        | SATimeoutError
        | DisconnectionError
        | InterfaceError
    )
    if isinstance(exc, outage) or type(exc) is OSError:
        return handle_database_error(request, exc)
    return handle_unexpected(request, exc)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: handle_http_exception,
    DomainError: handle_domain_error,
    IntegrityError: handle_integrity_error,
    DBAPIError: handle_database_error,
    # Raised as the driver's own by reads on the driver's connection (service.db.driver_reads),
    # where SQLAlchemy would have wrapped them in a DBAPIError: the same 503.
    asyncpg.PostgresError: handle_database_error,
    asyncpg.InterfaceError: handle_database_error,
    Exception: handle_exception,
}

__all__ = [
    "PROBLEM_JSON",
    "Conflict",
    "DomainError",
    "MediaType",
    "NotFound",
    "RuleViolation",
    "UnknownReference",
]
