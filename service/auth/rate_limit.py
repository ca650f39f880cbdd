"""Request limits: per token (authenticated requests), and per client address for failed
authentication (guessing tokens), counted in fixed one-minute windows.

By default the counts live in each process's memory, so with N replicas a token can make up to
N times the limit. With RATE_LIMIT_STORE_URL (redis:// or rediss://, Redis or Valkey) every
replica counts in that one store, atomically: one INCR (and an EXPIRE on the window's first
request) in a single MULTI, so two processes taking 240 requests at once allow exactly the limit.
If the store cannot be reached the limit is not applied (fail open, with a warning at most every
30 s): an outage of the counter must not take the clinical API down with it. A frozen store costs
a request at most its short socket timeout, each request on its own (nothing waits for another);
after a failure the store is left alone for a few seconds."""

import logging
import time
from dataclasses import dataclass
from typing import Any

from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.auth.identity import Identity

log = logging.getLogger("service.rate_limit")
WINDOW_S = 60
# Store calls sit on every request's path: a frozen server must cost milliseconds, not seconds.
_SOCKET_TIMEOUT_S = 0.25
_RETRY_STORE_AFTER_S = 5.0
_WARN_EVERY_S = 30.0
MAX_KEYS = 100_000


@dataclass(frozen=True)
class Hit:
    count: int  # requests in this window, this one included
    reset: int  # seconds until the window ends


class MemoryCounter:
    """This process's counts (fixed windows)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (window, count)

    async def hit(self, key: str, now: float) -> Hit | None:
        window = int(now // WINDOW_S)
        if len(self._counts) >= MAX_KEYS:
            self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
        seen, count = self._counts.get(key, (window, 0))
        count = count + 1 if seen == window else 1
        self._counts[key] = (window, count)
        return Hit(count, WINDOW_S * (window + 1) - int(now))

    async def peek(self, key: str, now: float) -> Hit | None:
        window = int(now // WINDOW_S)
        seen, count = self._counts.get(key, (window, 0))
        return Hit(count if seen == window else 0, WINDOW_S * (window + 1) - int(now))


class SharedCounter:
    """Counts in Redis or Valkey, shared by every replica; None when the store is unreachable."""

    warned_at = 0.0

    def __init__(self, url: str) -> None:
        self.client = Redis.from_url(
            url, socket_timeout=_SOCKET_TIMEOUT_S, socket_connect_timeout=_SOCKET_TIMEOUT_S
        )
        self._down_until = 0.0

    async def hit(self, key: str, now: float) -> Hit | None:
        if now < self._down_until:
            return None
        window = int(now // WINDOW_S)
        name = f"registry:rate:{key}:{window}"
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, WINDOW_S + 1, nx=True)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._down_until = now + _RETRY_STORE_AFTER_S
            self._unavailable(exc)
            return None
        return Hit(int(count), WINDOW_S * (window + 1) - int(now))

    async def peek(self, key: str, now: float) -> Hit | None:
        if now < self._down_until:
            return None
        window = int(now // WINDOW_S)
        try:
            count = await self.client.get(f"registry:rate:{key}:{window}")
        except (RedisError, OSError) as exc:
            self._down_until = now + _RETRY_STORE_AFTER_S
            self._unavailable(exc)
            return None
        return Hit(int(count or 0), WINDOW_S * (window + 1) - int(now))

    def _unavailable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - SharedCounter.warned_at >= _WARN_EVERY_S:
            SharedCounter.warned_at = now
            log.warning(
                "rate-limit store unreachable: limit not applied", extra={"error": type(exc).__name__}
            )

    async def close(self) -> None:
        await self.client.aclose()


Counter = MemoryCounter | SharedCounter


def counter(store_url: str | None) -> Counter:
    return SharedCounter(store_url) if store_url else MemoryCounter()


def clock() -> float:
    return time.time()


def _refuse(limit: int, hit: Hit, what: str) -> TooManyRequestsException:
    retry = max(1, hit.reset)  # a client retrying sooner is refused again
    return TooManyRequestsException(
        detail=f"More than {limit} {what} a minute; retry after {retry} s.",
        headers={**_headers(limit, hit), "Retry-After": str(retry)},
    )


def _headers(limit: int, hit: Hit) -> dict[str, str]:
    return {
        "RateLimit-Policy": f"{limit};w={WINDOW_S}",
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, limit - hit.count)),
        "RateLimit-Reset": str(hit.reset),
    }


class PerTokenLimit:
    """ASGI middleware after authentication: counts each authenticated request against its
    token, refuses beyond the limit (429 problem+json, Retry-After), and says where the token
    stands in RateLimit-* headers."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        identity = scope.get("user")
        if scope["type"] != ScopeType.HTTP or not isinstance(identity, Identity):
            await self.app(scope, receive, send)  # open paths, OPTIONS
            return
        hit = await scope["app"].state.rate_counter.hit(f"token:{identity.name}", clock())
        if hit is None:  # the shared store is down: fail open
            await self.app(scope, receive, send)
            return
        if hit.count > self.limit:
            raise _refuse(self.limit, hit, "requests with this token")
        extra = [(k.lower().encode(), v.encode()) for k, v in _headers(self.limit, hit).items()]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


async def refuse_if_guessing(connection: Any) -> None:
    """Before a token is looked up: 429 when the client's address has already failed
    authentication `auth_failure_limit` times this minute (a no-op when limits are off)."""
    state = connection.app.state
    if not state.auth_failure_limit:
        return
    peek = await state.rate_counter.peek(_failures_of(connection), clock())
    if peek is not None and peek.count >= state.auth_failure_limit:
        raise _refuse(state.auth_failure_limit, peek, "failed authentications from this address")


async def count_failure(connection: Any) -> None:
    """A failed authentication (unknown, revoked, expired or malformed token) from the client."""
    if connection.app.state.auth_failure_limit:
        await connection.app.state.rate_counter.hit(_failures_of(connection), clock())


def _failures_of(connection: Any) -> str:
    return f"auth-failures:{connection.client.host if connection.client else 'unknown'}"


def rate_limit(per_minute: int) -> DefineMiddleware:
    return DefineMiddleware(PerTokenLimit, limit=per_minute)
