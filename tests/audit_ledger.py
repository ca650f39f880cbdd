"""Every successful write the integration and contract tests make is checked against the audit
trail as it happens: exactly one matching record (resource id and action) per write, none for a
replayed idempotent create, one for a token's revocation however often it is repeated."""

import asyncio
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from uuid import UUID

from anyio.from_thread import BlockingPortal
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from service.db.models import AuditRecord

ACTIONS = {"POST": "create", "PATCH": "update", "DELETE": "delete"}
ID_AT_END = re.compile(r"/([0-9a-fA-F-]{36})/?$")
# Totals over the run, printed in the terminal summary (tests/conftest.py).
TOTALS = Counter[str]()


async def count_records(session: AsyncSession, resource_id: str, action: str) -> int:
    statement = (
        select(func.count())
        .select_from(AuditRecord)
        .where(AuditRecord.resource_id == UUID(resource_id), AuditRecord.action == action)  # type: ignore[arg-type]
    )
    return int(await session.scalar(statement) or 0)


def counter_for_url(url: str) -> Callable[[str, str], int]:
    """Counts in a database from outside the app's event loop (schemathesis' calls)."""
    engine = create_async_engine(url, poolclass=NullPool)
    factory = async_sessionmaker(engine)

    async def count(resource_id: str, action: str) -> int:
        async with factory() as session:
            return await count_records(session, resource_id, action)

    return lambda resource_id, action: asyncio.run(count(resource_id, action))


def counter_in_portal(
    portal: BlockingPortal, factory: async_sessionmaker[AsyncSession]
) -> Callable[[str, str], int]:
    """Counts through the app's own session factory, on the test client's event loop."""

    async def count(resource_id: str, action: str) -> int:
        async with factory() as session:
            return await count_records(session, resource_id, action)

    return lambda resource_id, action: portal.call(count, resource_id, action)


@dataclass
class AuditLedger:
    name: str  # which run, for the totals
    count: Callable[[str, str], int]
    expected: Counter[tuple[str, str]] = field(default_factory=Counter)

    def observe(self, method: str, url: str, status: int, body: bytes, replayed: bool) -> None:
        method = method.upper()
        action = ACTIONS.get(method)
        if action is None or not 200 <= status < 300:
            return
        path = urlsplit(url).path
        if path.endswith(("/lock", "/retire")):  # locking a study, retiring a cut: updates
            resource_id, action = path.split("/")[-2].lower(), "update"
        elif method == "POST" and "/studies/import" in path:
            resource_id = str(json.loads(body)["study_id"])  # the study's own create record
        elif method == "POST":
            resource_id = str(json.loads(body)["id"])
        else:
            match = ID_AT_END.search(path)
            assert match, f"{method} {path}: a successful write with no record id in its path"
            resource_id = match.group(1).lower()
        key = (resource_id, action)
        if method == "DELETE" and path.startswith("/api/v1/tokens/"):
            key = (resource_id, "update")  # a token is revoked, not deleted; once is recorded
            self.expected[key] = 1
        elif not replayed:
            self.expected[key] += 1
        found = self.count(*key)
        assert found == self.expected[key], (
            f"{method} {path} ({status}): {found} '{key[1]}' audit record(s) for {resource_id}, "
            f"expected {self.expected[key]}"
        )
        TOTALS[f"{self.name} writes checked"] += 1
