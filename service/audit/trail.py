"""The audit trail: every create, update and delete writes, in the same transaction, an
append-only record of who, when (database clock, UTC), what, the old and new value of each
changed field, and why. Each record's hash covers its content and the previous record's hash.

Two defences beyond the chain itself:
- an anchor: `head()` gives the chain's length and last hash, to keep outside the database;
  `verify(head=...)` then detects records removed from the end, or any record rewritten and the
  chain recomputed after it (the anchored hash no longer matches);
- a key: with AUDIT_HMAC_KEY set, records are chained with HMAC-SHA256, so nobody without the key
  can recompute the chain after an edit. A keyed record is marked `hash_alg = hmac-sha256`; an
  unkeyed record after a keyed one is reported as a downgrade."""

import asyncio
import hashlib
import hmac
import json
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID

from sqlalchemy import DateTime, String, event, func, text
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only
from sqlalchemy.util.concurrency import in_greenlet
from sqlmodel import col, select

from service.db import driver_writes
from service.db.models import AuditRecord, as_utc
from service.observability import metrics

GENESIS = "0" * 64
WRITE_CONTEXT = "audit_write_context"
SYSTEM = ("system", "system")
# Postgres: one writer of the chain at a time, across replicas (transaction-scoped lock).
CHAIN_LOCK = 7_300_421
# Audit records hashed, and inserted by one statement, between two turns of the event loop: a
# cascade delete of a 500-patient study chained ~1,500 records in one go, and every other
# request of the process waited 50-85 ms (sampled while a benchmark imported and deleted).
CHAIN_SLICE = 200


def canonical(record: AuditRecord | SimpleNamespace) -> bytes:
    """The hashed content of a stored record, or of the row about to be stored."""
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
    if record.study_id is not None:
        content["study_id"] = str(record.study_id)
    if record.access_grant is not None:
        content["access_grant"] = record.access_grant
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode(
        "utf-8"
    )


KEYED = "hmac-sha256"
PLAIN = "sha256"


def digest(record: AuditRecord | SimpleNamespace, key: str | None = None) -> str:
    if key is not None:
        return hmac.new(key.encode("utf-8"), canonical(record), hashlib.sha256).hexdigest()
    return hashlib.sha256(canonical(record)).hexdigest()


async def hmac_key(session: AsyncSession) -> str | None:
    """The audit key the session's engine was configured with (Settings.audit_hmac_key)."""
    from service.db.session import AUDIT_KEY_OPTION

    connection = (await session.connection()).sync_connection
    key = connection.get_execution_options().get(AUDIT_KEY_OPTION) if connection is not None else None
    return str(key) if key else None


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
    """Queue an audit record: it is chained and written when the transaction commits."""
    actor, role = session.info.get("actor", SYSTEM)
    # Which study and grant the write was authorized under (service.access.writes), for this
    # record and the records a cascade writes after it.
    study_id, grant = session.info.get(WRITE_CONTEXT, (None, None))
    if study_id is None and resource_type == "study":
        study_id = resource_id  # a study's own records (its creation, an import)
    session.info.setdefault(_PENDING, []).append(
        {
            "actor": actor,
            "actor_role": role,
            "study_id": study_id,
            "access_grant": grant,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "changes": json.loads(json.dumps(changes, default=str)),
            "reason": session.info.get("reason"),
        }
    )


AUDIT = AuditRecord.__table__  # type: ignore[attr-defined]
# Postgres: the chain's lock, then its last hash and the clock, in one round trip (migration
# 0023: the function's read after the lock takes a fresh snapshot).
_CHAIN_HEAD = (
    text("SELECT last_hash, clock FROM audit_chain_head(:key)")
    .bindparams(key=CHAIN_LOCK)
    .columns(last_hash=String(), clock=DateTime(timezone=True))
)
_PREVIOUS_AND_CLOCK = core_select(
    core_select(AUDIT.c.hash).order_by(AUDIT.c.seq.desc()).limit(1).scalar_subquery(),
    func.current_timestamp(),
)
_INSERT = AUDIT.insert()


# The lock order, fixed so that writers cannot deadlock: a transaction takes its row locks
# (its own writes, and the foreign-key checks they make) as it goes, then, at commit, after a
# last flush, the chain lock, and holds it only while its audit records are chained and written.
# The chain lock is thus always the last lock taken and is never held while waiting for a row:
# a cascade delete and a concurrent child create can wait for each other's rows, never deadlock
# through the chain; and a long transaction (a bulk import) holds it for a moment at its end.
@event.listens_for(Session, "before_commit")
def _chain_at_commit(session: Session) -> None:
    queued: list[dict[str, Any]] = session.info.pop(_PENDING, [])
    if not queued:
        return
    from service.db.session import AUDIT_KEY_OPTION

    session.flush()
    # Core statements on the transaction's connection, built once: through the ORM's execute
    # path they cost a create more CPU than their SQL (profiled).
    connection = session.connection()
    # The previous hash and the database clock in one statement; on Postgres taken after the
    # chain's lock, by a function whose read sees the chain's last committed record.
    head = _CHAIN_HEAD if connection.dialect.name == "postgresql" else _PREVIOUS_AND_CLOCK
    previous, clock = driver_writes.execute_sync(connection, head, {}).one()
    configured = connection.get_execution_options().get(AUDIT_KEY_OPTION)
    key = str(configured) if configured else None
    previous = previous or GENESIS
    now = _utc(clock)
    # Rows, not ORM objects, inserted by one executemany: a cascade delete queues a record per
    # deleted row (thousands for a large study), and building, validating and flushing an ORM
    # object for each held the event loop for most of a second at 500 patients.
    rows = []
    for n, fields in enumerate(queued, 1):
        row = {**fields, "recorded_at": now, "prev_hash": previous, "hash_alg": KEYED if key else PLAIN}
        row["hash"] = digest(SimpleNamespace(**row), key)
        previous = row["hash"]
        rows.append(row)
        if n % CHAIN_SLICE == 0:
            _let_others_run()
    if len(rows) == 1:
        driver_writes.execute_sync(connection, _INSERT, rows[0])  # a single row: a plain INSERT
    else:
        for batch in range(0, len(rows), CHAIN_SLICE):
            connection.execute(_INSERT, rows[batch : batch + CHAIN_SLICE])
            _let_others_run()
    session.info[_WRITTEN] = session.info.get(_WRITTEN, 0) + len(rows)


_PENDING = "audit_records_pending"


def _let_others_run() -> None:
    """Give the event loop a turn from the commit hook: sync code that an async session runs in
    its greenlet (a sync session, as the command line's, has no loop to give a turn to)."""
    if in_greenlet():
        await_only(asyncio.sleep(0))


# Audit records count for /metrics once their transaction commits.
_WRITTEN = "audit_records_written"


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    written = session.info.pop(_WRITTEN, 0)
    if written:
        metrics.audit_records_written(written)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_WRITTEN, None)
    session.info.pop(_PENDING, None)


async def head(session: AsyncSession) -> tuple[int, str]:
    """(number of records, hash of the last one): the anchor to keep elsewhere."""
    count = int(await session.scalar(select(func.count()).select_from(AuditRecord)) or 0)
    last = await session.scalar(select(AuditRecord.hash).order_by(col(AuditRecord.seq).desc()).limit(1))
    return count, last or GENESIS


def parse_head(text: str) -> tuple[int, str]:
    """`COUNT:HASH` as printed by `audit head`."""
    count, _, value = text.strip().partition(":")
    if not count.isdigit() or len(value) != 64:
        raise ValueError("expected COUNT:HASH as printed by `python -m service audit head`")
    return int(count), value.lower()


async def verify(session: AsyncSession, anchor: tuple[int, str] | None = None) -> tuple[int, str | None]:
    """(records checked, the first problem found or None). With `anchor` (count, hash) the
    chain must still hold at least `count` records and the `count`-th must have that hash."""
    key = await hmac_key(session)
    previous = GENESIS
    checked = 0
    keyed_seen = False
    for entry in (await session.scalars(select(AuditRecord).order_by(col(AuditRecord.seq)))).all():
        checked += 1
        if entry.prev_hash != previous:
            return checked, f"record {entry.seq}: prev_hash does not match the record before it"
        if entry.hash_alg == KEYED:
            keyed_seen = True
            if key is None:
                return checked, f"record {entry.seq} is keyed (HMAC): set AUDIT_HMAC_KEY to verify it"
        elif keyed_seen:
            return checked, f"record {entry.seq}: unkeyed record after keyed ones (downgrade)"
        if digest(entry, key if entry.hash_alg == KEYED else None) != entry.hash:
            return checked, f"record {entry.seq}: content does not match its hash (altered)"
        if anchor is not None and checked == anchor[0] and entry.hash != anchor[1]:
            return checked, f"record {entry.seq} (number {checked}) does not match the anchored head"
        previous = entry.hash
    if anchor is not None and checked < anchor[0]:
        return checked, f"the chain has {checked} records, fewer than the {anchor[0]} anchored (truncated)"
    return checked, None
