"""API tokens: random secrets shown once, stored as SHA-256 digests (the secrets carry 256 bits
of entropy, so a fast hash is enough), with roles reader < curator < admin."""

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.audit import trail
from service.db.models import ApiToken
from service.errors import Conflict

Role = Literal["reader", "curator", "admin"]
RANK: dict[str, int] = {"reader": 0, "curator": 1, "admin": 2}
PREFIX = "lor_"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


async def issue(
    session: AsyncSession, name: str, role: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token row and its secret (the only time the secret exists outside the caller)."""
    if await session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise Conflict(f"a token named {name!r} already exists", field="name")
    secret = new_secret()
    token = ApiToken(name=name, role=role, token_hash=digest(secret), expires_at=expires_at)
    session.add(token)
    await session.flush()
    # Every token, issued by the API, the command line or the first start, is on the trail.
    await trail.record(
        session,
        "create",
        "api_token",
        token.id,
        {
            "name": [None, token.name],
            "role": [None, token.role],
            "expires_at": [None, expires_at.isoformat() if expires_at else None],
        },
    )
    return token, secret


async def revoke(session: AsyncSession, token: ApiToken) -> bool:
    """Mark `token` revoked (audited); False when it already was."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = datetime.now(UTC)
    token.version += 1
    await session.flush()
    await trail.record(
        session, "update", "api_token", token.id, {"revoked_at": [None, token.revoked_at.isoformat()]}
    )
    return True


async def count_tokens(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(ApiToken)) or 0)
