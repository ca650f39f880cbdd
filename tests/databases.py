"""Test databases: a fresh SQLite file, and a fresh Postgres database when TEST_POSTGRES_URL is set."""

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from service.db.migrate import upgrade

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"

# Children first, so that deleting in this order never breaks a foreign key. API tokens are
# kept: the test clients hold one; so is the audit trail, which is append-only.
TABLES = (
    "idempotency_keys",
    "data_cut_analyses",
    "data_cuts",
    "source_records",
    "patient_links",
    "treatment_components",
    "adverse_events",
    "outcomes",
    "treatments",
    "patients",
    "sites",
    "reported_results",
    "arm_agents",
    "arms",
    "studies",
    "agents",
)


def backends() -> list[str]:
    return ["sqlite", "postgres"] if POSTGRES_URL or REQUIRE_POSTGRES else ["sqlite"]


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def fresh_database(backend: str, tmp_dir: Path, migrate: bool = True) -> Iterator[str]:
    """The URL of a new, empty database (migrated to head unless `migrate` is false); dropped after."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_dir / f'registry-{uuid.uuid4().hex[:8]}.db'}"
        if migrate:
            upgrade(url)
        yield url
        return
    if not POSTGRES_URL:
        raise RuntimeError("REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set")
    name = f"registry_test_{uuid.uuid4().hex[:12]}"
    server = make_url(POSTGRES_URL)
    asyncio.run(_admin(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            for table in TABLES:
                await connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed table names
    finally:
        await engine.dispose()


def empty_tables(url: str) -> None:
    asyncio.run(_truncate(url))


async def _issue(
    url: str, name: str, role: str | None, secret: str | None, expires_at: Any, revoked: bool, grants: Any
) -> str:
    from datetime import UTC, datetime

    from service.auth.tokens import digest, new_secret
    from service.db.models import ApiToken

    secret = secret or new_secret()
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with AsyncSession(engine) as session, session.begin():
            session.add(
                ApiToken(
                    name=name,
                    role=role,
                    grants=grants,
                    token_hash=digest(secret),
                    expires_at=expires_at,
                    revoked_at=datetime.now(UTC) if revoked else None,
                )
            )
    finally:
        await engine.dispose()
    return secret


def issue_token(
    url: str,
    name: str,
    role: str | None,
    *,
    secret: str | None = None,
    expires_at: Any = None,
    revoked: bool = False,
    grants: list[dict[str, Any]] | None = None,
) -> str:
    """Store a token directly (tests only: grants are not checked) and return its secret."""
    return asyncio.run(_issue(url, name, role, secret, expires_at, revoked, grants))
