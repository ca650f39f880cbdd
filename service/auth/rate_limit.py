"""Per-token request limit: Litestar's rate-limit middleware keyed on the authenticated token,
with the Retry-After that its 429 leaves out.

By default the count lives in each process's memory, so with N replicas a token can make up to
N times the limit. With RATE_LIMIT_STORE_URL (redis:// or rediss://, Redis or Valkey) every
replica counts in that one store. If the store cannot be reached the limit is not applied
(fail open, with a warning at most every 30 s): an outage of the counter must not take the
clinical API down with it."""

import logging
import time
from typing import Any

from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar.stores.base import Store
from litestar.stores.redis import RedisStore
from litestar.types import Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

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


log = logging.getLogger("service.rate_limit")
STORE = "rate_limit"
# Redis calls sit on every request's path: a frozen server must cost milliseconds, not seconds.
_SOCKET_TIMEOUT_S = 0.5
_WARN_EVERY_S = 30.0


class SharedCountStore(RedisStore):
    """Litestar's Redis store, failing open when the server cannot be reached."""

    _warned_at = 0.0

    def _unavailable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - SharedCountStore._warned_at >= _WARN_EVERY_S:
            SharedCountStore._warned_at = now
            log.warning(
                "rate-limit store unreachable: limit not applied", extra={"error": type(exc).__name__}
            )

    async def get(self, key: str, renew_for: Any = None) -> bytes | None:
        try:
            return await super().get(key, renew_for)
        except (RedisError, OSError) as exc:
            self._unavailable(exc)
            return None

    async def set(self, key: str, value: str | bytes, expires_in: Any = None) -> None:
        try:
            await super().set(key, value, expires_in)
        except (RedisError, OSError) as exc:
            self._unavailable(exc)


def shared_store(url: str) -> Store:
    client = Redis.from_url(url, socket_timeout=_SOCKET_TIMEOUT_S, socket_connect_timeout=_SOCKET_TIMEOUT_S)
    return SharedCountStore(client, namespace="registry", handle_client_shutdown=True)


def rate_limit(per_minute: int) -> DefineMiddleware:
    return RateLimitConfig(
        rate_limit=("minute", per_minute),
        exclude=OPEN_PATHS,
        identifier_for_request=_token_name,
        check_throttle_handler=_authenticated,
        middleware_class=PerTokenRateLimit,
        store=STORE,
    ).middleware
