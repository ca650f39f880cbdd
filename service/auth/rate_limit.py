"""Per-token request limit: Litestar's rate-limit middleware keyed on the authenticated token,
with the Retry-After that its 429 leaves out.

The count lives in the app's memory store, so each replica counts on its own: with N replicas
a token can make up to N times the limit. A shared count would cost a database write on every
request, reads included, which the embedded SQLite default serialises."""

from typing import Any

from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar.types import Receive, Scope, Send

from service.auth.middleware import OPEN_PATHS, Identity


class PerTokenRateLimit(RateLimitMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except TooManyRequestsException as exc:
            headers = dict(exc.headers or {})
            # RateLimit-Reset is the seconds left in the window; a client retrying sooner
            # is refused again, so 1 is the least worth saying.
            headers["Retry-After"] = str(
                max(1, int(headers.get(self.config.rate_limit_reset_header_key, "1")))
            )
            raise TooManyRequestsException(
                detail=f"More than {self.max_requests} requests a minute with this token; retry after "
                f"{headers['Retry-After']} s.",
                headers=headers,
            ) from None


def _token_name(request: Request[Any, Any, Any]) -> str:
    identity: Identity = request.scope["user"]
    return identity.name  # token names are unique


def _authenticated(request: Request[Any, Any, Any]) -> bool:
    # Unauthenticated requests never get here except OPTIONS, which is not counted.
    return isinstance(request.scope.get("user"), Identity)


def rate_limit(per_minute: int) -> DefineMiddleware:
    return RateLimitConfig(
        rate_limit=("minute", per_minute),
        exclude=OPEN_PATHS,
        identifier_for_request=_token_name,
        check_throttle_handler=_authenticated,
        middleware_class=PerTokenRateLimit,
    ).middleware
