"""Idempotent creation (IETF draft "The Idempotency-Key HTTP Header Field"): a POST retried
with the same key and body replays the first response and creates nothing; the same key with
another body is 422. The key row is inserted before the record, in the same transaction, so
concurrent retries queue on the key's primary key and only the first one creates."""

import hashlib
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.params import HeaderParameter
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import driver_writes
from service.db.models import IdempotencyKey, utcnow
from service.errors import Conflict, RuleViolation

IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        max_length=200,
        pattern=r"^[!-~]{1,200}$",
        description="Retrying with the same key and body returns the first response and creates nothing.",
    ),
]
PENDING = 0


def request_hash(path: str, body: bytes) -> str:
    return hashlib.sha256(path.encode() + b"\0" + body).hexdigest()


KEYS = IdempotencyKey.__table__  # type: ignore[attr-defined]
# Built once: statements whose values are bound parameters keep one cache key and compiled form,
# where statements built per request with their values cost a write more CPU than its SQL.
# The claim is SQL text: SQLAlchemy's ON CONFLICT construct has no cache key, so it was compiled
# again on every create (a tenth of a create's CPU, profiled). The same text on both databases;
# the time keeps its column's type (how SQLite stores it).
_CLAIM = text(
    "INSERT INTO idempotency_keys (actor, key, request_hash, status_code, response_body, created_at) "
    "VALUES (:actor, :key, :request_hash, :status_code, :response_body, :created_at) "
    "ON CONFLICT (actor, key) DO NOTHING"
).bindparams(bindparam("created_at", type_=KEYS.c.created_at.type))
_STORED = select(KEYS).where(KEYS.c.actor == bindparam("actor"), KEYS.c.key == bindparam("key"))
_REMEMBER = update(KEYS).where(KEYS.c.actor == bindparam("w_actor"), KEYS.c.key == bindparam("w_key"))


async def claim(session: AsyncSession, actor: str, key: str, fingerprint: str) -> Response[Any] | None:
    """Reserve `key` for this request, or the stored response of the request that used it."""
    # INSERT .. ON CONFLICT DO NOTHING (SQLite and Postgres): one statement, no savepoint; a
    # concurrent first use of the key makes it wait for that transaction, then find its row.
    claimed = await driver_writes.execute(
        session,
        _CLAIM,
        {
            "actor": actor,
            "key": key,
            "request_hash": fingerprint,
            "status_code": PENDING,
            "response_body": "",
            "created_at": utcnow(),
        },
    )
    if claimed.rowcount == 0:
        stored = (await driver_writes.execute(session, _STORED, {"actor": actor, "key": key})).first()
        if stored is None:  # pragma: no cover - the row that conflicted was rolled back meanwhile
            raise Conflict("this Idempotency-Key is being used by another request; retry")
        if stored.request_hash != fingerprint:
            raise RuleViolation(
                "this Idempotency-Key was used with a different request", field="Idempotency-Key"
            )
        if stored.status_code == PENDING:
            raise Conflict("the first request with this Idempotency-Key is still running; retry")
        headers = {"Idempotent-Replayed": "true"}
        if stored.location:
            headers["Location"] = stored.location
        if stored.etag:
            headers["ETag"] = stored.etag
        return Response(
            stored.response_body.encode(),
            status_code=stored.status_code,
            media_type="application/json",
            headers=headers,
        )
    return None


async def replay_or_claim(
    request: Request[Any, Any, Any], session: AsyncSession, key: str | None
) -> Response[Any] | None:
    """With an Idempotency-Key: the stored response of the first request that used it, or None
    once the key is claimed for this request (see `claim`). Without one: None."""
    if not key:
        return None
    fingerprint = request_hash(request.url.path, await request.body())
    return await claim(session, request.scope["user"].name, key, fingerprint)


async def remember(session: AsyncSession, actor: str, key: str, response: Response[Any]) -> None:
    """Store the response on the key that `claim` inserted (one UPDATE, no read first)."""
    await driver_writes.execute(
        session,
        _REMEMBER,
        {
            "w_actor": actor,
            "w_key": key,
            "status_code": response.status_code or 201,  # POST creates answer 201
            "response_body": msgspec.json.encode(response.content).decode(),
            "location": response.headers.get("Location"),
            "etag": response.headers.get("ETag"),
        },
    )
