"""Bearer-token authentication for everything but the health check and the API docs, and the
role guards the handlers declare."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware
from sqlalchemy import select as sql_select
from sqlmodel import col

from service.access.grants import Grant
from service.access.scope import ROLES, Scope, current_scope, enter
from service.auth.identity import Identity
from service.auth.oidc import OidcVerifier, Refused, looks_like_jwt
from service.auth.rate_limit import count_failure, refuse_if_guessing
from service.auth.token_cache import TokenCache, TokenRow
from service.auth.tokens import RANK, digest
from service.db.models import ApiToken, as_utc

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="registry"'}
# The routers of the health checks, the metrics and the API docs carry this: no token needed. An
# option on the route, not a path pattern: Litestar matched the pattern against every request's
# path (findall of three alternatives, a few percent of a patient read).
OPEN = {"exclude_from_auth": True}


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
            row = await _oidc(connection, header) or await _token(connection, header)
        except NotAuthorizedException:
            await count_failure(connection)
            raise
        # Every query this request makes runs under the identity's scope (service.access.scope).
        enter(Scope(row.role, row.grants, min_count=connection.app.state.aggregate_min_count))
        return AuthenticationResult(user=Identity(row.name, row.role, row.grants), auth=None)


async def _oidc(connection: ASGIConnection[Any, Any, Any, Any], header: str) -> TokenRow | None:
    """The principal of an OpenID Connect token, when OIDC is configured and this is a JWT."""
    verifier: OidcVerifier | None = connection.app.state.oidc
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if verifier is None or scheme.lower() != "bearer" or not looks_like_jwt(secret):
        return None
    try:
        principal = await verifier.principal(secret)
    except Refused as exc:
        raise _refuse(str(exc)) from exc
    return TokenRow(principal.name, principal.role, None, None, principal.grants)


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


LOOKUP = (
    col(ApiToken.name),
    col(ApiToken.role),
    col(ApiToken.expires_at),
    col(ApiToken.revoked_at),
    col(ApiToken.grants),
)


async def _lookup(connection: ASGIConnection[Any, Any, Any, Any], key: str) -> TokenRow | None:
    # Its own short transaction: the request's session does not exist yet (dependencies are
    # resolved after authentication), and a cache hit needs none.
    async with connection.app.state.session_factory() as session:
        found = (await session.execute(sql_select(*LOOKUP).where(col(ApiToken.token_hash) == key))).first()
    if found is None:
        return None
    grants = tuple(msgspec.convert(found.grants, list[Grant])) if found.grants else ()
    return TokenRow(found.name, found.role, found.expires_at, found.revoked_at, grants)


def authentication() -> DefineMiddleware:
    _hand_guards_the_handler_itself()
    return DefineMiddleware(TokenAuthentication, exclude_from_auth_key="exclude_from_auth")


async def _authorize_connection(
    self: BaseRouteHandler, connection: ASGIConnection[Any, Any, Any, Any]
) -> None:
    for guard in self.resolve_guards():
        await guard(connection, self)  # type: ignore[misc]  # resolve_guards made each async


def _hand_guards_the_handler_itself() -> None:
    """Litestar 2.x gives every guard a copy of the route handler on every request, so that no
    guard can change the handler for the requests after it. Copying a handler (some sixty
    slots, one setattr each) was a tenth of a patient read's CPU (cProfile of
    `bench/cpu_per_request.py get`). The only guards here are `requires`' below, which never
    look at the handler they are given, so they get the handler itself."""
    BaseRouteHandler.authorize_connection = _authorize_connection  # type: ignore[method-assign]


# What each guard admits besides the global roles of its rank: the grant roles that serve it
# (service.access.scope.ROLES). `admin` and `global curator` admit no grant.
GRANTS_FOR = {
    "reader": ROLES["analysis"],  # study-level records and analyses: every grant
    "rows": ROLES["rows"],  # patient-level rows: reader and curator grants, never aggregate
    # figures draw every event: reader and curator grants; aggregate ones only with the
    # small-count minimum off (AGGREGATE_MIN_COUNT=0; service.access.statement)
    "figure": ROLES["rows"],
    "curator": ROLES["write"],
    "global curator": frozenset[str](),
    "admin": frozenset[str](),
}
GLOBAL_RANK = {
    "reader": "reader",
    "rows": "reader",
    "figure": "reader",
    "curator": "curator",
    "global curator": "curator",
    "admin": "admin",
}
WHY = {
    "reader": "a role or a grant is needed",
    "figure": "figures show every event: a global role or a reader or curator grant is needed (or the small-count minimum off)",
    "rows": "patient-level rows need a global role or a reader or curator grant (an aggregate grant sees analyses only)",
    "curator": "curator or above, or a curator grant, is needed",
    "global curator": "a global curator or admin is needed (grants hold existing studies)",
    "admin": "the admin role is needed",
}


def requires(level: str) -> Any:
    """A guard letting through the global roles of `level` and above, and the grants serving it.
    Which records an identity with grants then sees or changes is the scope's business
    (service.access.scope), applied by the queries themselves."""
    needed = GLOBAL_RANK[level]
    grant_roles = GRANTS_FOR[level]

    # Async: Litestar runs a synchronous guard in a worker thread, a thread hop per request.
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.scope.get("method") == "OPTIONS":
            return  # OPTIONS only lists the allowed methods; authentication skips it too
        identity: Identity | None = connection.scope.get("user")
        if identity is None:
            raise _refuse("A bearer token is required: send 'Authorization: Bearer <token>'.")
        if identity.role is not None:
            if RANK[identity.role] < RANK[needed]:
                raise PermissionDeniedException(
                    detail=f"The {identity.role} role may not do this: {WHY[level]}."
                )
        elif not any(
            g.role in grant_roles
            or (level == "figure" and g.role == "aggregate" and connection.app.state.aggregate_min_count <= 0)
            for g in identity.grants
        ):
            raise PermissionDeniedException(detail=f"The token's grants do not allow this: {WHY[level]}.")
        if level == "rows":
            # A route returning patient-level rows computes them on the patients the identity
            # may read, not on those an aggregate grant may only count.
            enter(replace(current_scope(), purpose="rows"))

    guard.__name__ = f"requires_{level.replace(' ', '_')}"
    guard.level = level  # type: ignore[attr-defined]  # read by the contract (service.app)
    return guard
