"""Bearer-token authentication for everything but the health check and the API docs, and the
role guards the handlers declare."""

from datetime import UTC, datetime
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware
from sqlmodel import select

from service.auth.identity import Identity
from service.auth.rate_limit import count_failure, refuse_if_guessing
from service.auth.token_cache import TokenCache, TokenRow
from service.auth.tokens import RANK, digest
from service.db.models import ApiToken, as_utc

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="registry"'}
OPEN_PATHS = ["^/health(/live|/ready)?$", "^/metrics$", "^/docs"]


def _refuse(detail: str) -> NotAuthorizedException:
    return NotAuthorizedException(detail=detail, headers=CHALLENGE)


class TokenAuthentication(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        if not header:
            raise _refuse("A bearer token is required: send 'Authorization: Bearer <token>'.")
        await refuse_if_guessing(connection)
        try:
            row = await _token(connection, header)
        except NotAuthorizedException:
            await count_failure(connection)
            raise
        return AuthenticationResult(user=Identity(row.name, row.role), auth=None)


async def _token(connection: ASGIConnection[Any, Any, Any, Any], header: str) -> TokenRow:
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or " " in secret:
        raise _refuse("Malformed Authorization header: expected 'Bearer <token>'.")
    key = digest(secret)
    cache: TokenCache = connection.app.state.token_cache
    row = cache.get(key)
    if row is None:
        if cache.known_unknown(key):
            raise _refuse("Unknown token.")
        row = await _lookup(connection, key)
        if row is None:
            cache.put_unknown(key)
            raise _refuse("Unknown token.")
        cache.put(key, row)
    if row.revoked_at is not None:
        raise _refuse("This token has been revoked.")
    if row.expires_at is not None and as_utc(row.expires_at) <= datetime.now(UTC):
        raise _refuse("This token has expired.")
    return row


async def _lookup(connection: ASGIConnection[Any, Any, Any, Any], key: str) -> TokenRow | None:
    # Its own short transaction: the request's session does not exist yet (dependencies are
    # resolved after authentication), and a cache hit needs none.
    async with connection.app.state.session_factory() as session:
        found = (
            await session.execute(
                select(ApiToken.name, ApiToken.role, ApiToken.expires_at, ApiToken.revoked_at).where(
                    ApiToken.token_hash == key
                )
            )
        ).first()
    return None if found is None else TokenRow(*found)


def authentication() -> DefineMiddleware:
    return DefineMiddleware(TokenAuthentication, exclude=OPEN_PATHS)


def requires(role: str) -> Any:
    """A guard letting through `role` and the roles above it."""

    # Async: Litestar runs a synchronous guard in a worker thread, a thread hop per request.
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.scope.get("method") == "OPTIONS":
            return  # OPTIONS only lists the allowed methods; authentication skips it too
        identity: Identity | None = connection.scope.get("user")
        if identity is None:
            raise _refuse("A bearer token is required: send 'Authorization: Bearer <token>'.")
        if RANK[identity.role] < RANK[role]:
            raise PermissionDeniedException(
                detail=f"The {identity.role} role may not do this: {role} or above is needed."
            )

    guard.__name__ = f"requires_{role}"
    return guard
