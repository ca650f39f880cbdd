"""API tokens: random secrets shown once, stored as SHA-256 digests (the secrets carry 256 bits
of entropy, so a fast hash is enough), with roles reader < curator < admin."""

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Literal

import msgspec
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.access.grants import Grant
from service.audit import trail
from service.db.models import ApiToken, Site, Study
from service.errors import Conflict, RuleViolation, UnknownReference

Role = Literal["reader", "curator", "admin"]
RANK: dict[str, int] = {"reader": 0, "curator": 1, "admin": 2}
PREFIX = "lor_"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


async def check_grants(session: AsyncSession, grants: list[Grant]) -> None:
    """Every granted study exists and every granted site is one of its study's (422 otherwise)."""
    for i, grant in enumerate(grants):
        if await session.get(Study, grant.study_id) is None:
            raise UnknownReference(f"study {grant.study_id} does not exist", field=f"grants[{i}].study_id")
        for site_id in grant.sites or ():
            site = await session.get(Site, site_id)
            if site is None or site.study_id != grant.study_id:
                raise UnknownReference(
                    f"site {site_id} is not a site of study {grant.study_id}", field=f"grants[{i}].sites"
                )


async def issue(
    session: AsyncSession,
    name: str,
    role: str | None,
    expires_at: datetime | None = None,
    grants: list[Grant] | None = None,
) -> tuple[ApiToken, str]:
    """A new token row and its secret (the only time the secret exists outside the caller):
    a global `role`, or `grants`, never both."""
    if (role is None) == (grants is None):
        raise RuleViolation(
            "A token has either a global role or grants, not both and not neither.", field="role"
        )
    if await session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise Conflict(f"a token named {name!r} already exists", field="name")
    stored = None
    if grants is not None:
        await check_grants(session, grants)
        stored = msgspec.to_builtins(grants)
    secret = new_secret()
    token = ApiToken(name=name, role=role, grants=stored, token_hash=digest(secret), expires_at=expires_at)
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
            "grants": [None, stored],
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
