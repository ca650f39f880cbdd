"""The audit trail: every create, update and delete writes, in the same transaction, an
append-only record of who, when (database clock, UTC), what, the old and new value of each
changed field, and why. Each record's hash covers its content and the previous record's hash."""

import hashlib
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.db.models import AuditRecord, as_utc

GENESIS = "0" * 64
SYSTEM = ("system", "system")
# Postgres: one writer of the chain at a time, across replicas (transaction-scoped lock).
CHAIN_LOCK = 7_300_421


def canonical(record: AuditRecord) -> bytes:
    content = {
        "recorded_at": _utc(record.recorded_at).isoformat(),
        "actor": record.actor,
        "actor_role": record.actor_role,
        "action": record.action,
        "resource_type": record.resource_type,
        "resource_id": str(record.resource_id),
        "changes": record.changes,
        "reason": record.reason,
        "prev_hash": record.prev_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode(
        "utf-8"
    )


def digest(record: AuditRecord) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def _utc(moment: Any) -> datetime:
    if isinstance(moment, str):  # SQLite's CURRENT_TIMESTAMP: 'YYYY-MM-DD HH:MM:SS' in UTC
        moment = datetime.fromisoformat(moment)
    return as_utc(moment)


def changes_between(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    """{field: [old, new]} for each field that differs (server-owned stamps left out)."""
    skip = {"version", "created_at", "updated_at"}
    keys = (set(before or {}) | set(after or {})) - skip
    out: dict[str, list[Any]] = {}
    for key in sorted(keys):
        old, new = (before or {}).get(key), (after or {}).get(key)
        if old != new:
            out[key] = [old, new]
    return out


async def record(
    session: AsyncSession, action: str, resource_type: str, resource_id: UUID, changes: dict[str, list[Any]]
) -> None:
    actor, role = session.info.get("actor", SYSTEM)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    previous = await session.scalar(select(AuditRecord.hash).order_by(col(AuditRecord.seq).desc()).limit(1))
    now = _utc(await session.scalar(select(func.current_timestamp())))
    entry = AuditRecord(
        recorded_at=now,
        actor=actor,
        actor_role=role,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        changes=json.loads(json.dumps(changes, default=str)),
        reason=session.info.get("reason"),
        prev_hash=previous or GENESIS,
        hash="",
    )
    entry.hash = digest(entry)
    session.add(entry)
    await session.flush()


async def verify(session: AsyncSession) -> tuple[int, str | None]:
    """(records checked, the first problem found or None)."""
    previous = GENESIS
    checked = 0
    for entry in (await session.scalars(select(AuditRecord).order_by(col(AuditRecord.seq)))).all():
        checked += 1
        if entry.prev_hash != previous:
            return checked, f"record {entry.seq}: prev_hash does not match the record before it"
        if digest(entry) != entry.hash:
            return checked, f"record {entry.seq}: content does not match its hash (altered)"
        previous = entry.hash
    return checked, None
