# ruff: noqa: S608 - SQL built only from the fixed column list PATIENT_COLUMNS
"""The raw limit: the benchmark's requests answered by a bare ASGI app with one hand-written query
each, through the raw driver (asyncpg, or aiosqlite) and msgspec. It does the same work as the
service where the work is part of the job — the token looked up on every request, `total` counted
with every page, the hash-chained audit record and the idempotency key written with every create,
the survival statistics computed by the same functions — and nothing else: no framework, no ORM,
no validation beyond the body's types, no error documents.

Run: python bench/raw_app.py DATABASE_URL PORT (a URL as the service takes it)."""

import asyncio
import hashlib
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

import msgspec
import numpy as np
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.analytics.survival.estimators import kaplan_meier, log_rank

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class AdverseEventIn(msgspec.Struct, forbid_unknown_fields=True):
    patient_id: uuid.UUID
    term: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    grade: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    grading_system: str | None = None
    onset_day: int | None = None
    resolution_day: int | None = None
    outcome: str | None = None


class Database:
    """One pool, placeholders written `?` and turned into `$n` for asyncpg."""

    def __init__(self, url: str) -> None:
        self.postgres = url.startswith("postgresql")
        self.url = url
        self.pool: Any = None
        self.sqlite: asyncio.Queue[Any] = asyncio.Queue()
        # SQLite has one writer: writers queue here rather than in SQLite's busy-wait backoff.
        self.write_lock = asyncio.Lock()

    async def open(self) -> None:
        if self.postgres:
            import asyncpg

            dsn = self.url.replace("postgresql+asyncpg", "postgresql")
            self.pool = await asyncpg.create_pool(dsn, min_size=5, max_size=5)
        else:
            import aiosqlite

            path = self.url.split("///", 1)[1]
            for _ in range(5):
                connection = await aiosqlite.connect(path, isolation_level=None)
                await connection.execute("PRAGMA busy_timeout=30000")
                self.sqlite.put_nowait(connection)

    def sql(self, text: str) -> str:
        if not self.postgres:
            return text
        parts = text.split("?")
        return "".join(part + (f"${i + 1}" if i < len(parts) - 1 else "") for i, part in enumerate(parts))

    def key(self, value: uuid.UUID) -> Any:
        return value if self.postgres else value.hex  # SQLite keeps ids as 32 hex digits

    async def run(self, work: Callable[[Any], Awaitable[Any]], write: bool = False) -> Any:
        if self.postgres:
            async with self.pool.acquire() as connection:
                if write:
                    async with connection.transaction():
                        return await work(connection)
                return await work(connection)
        connection = await self.sqlite.get()
        try:
            if write:
                async with self.write_lock:
                    await connection.execute("BEGIN IMMEDIATE")
                    try:
                        result = await work(connection)
                    except BaseException:
                        await connection.execute("ROLLBACK")
                        raise
                    await connection.execute("COMMIT")
                    return result
            return await work(connection)
        finally:
            self.sqlite.put_nowait(connection)

    async def rows(self, connection: Any, text: str, *args: Any) -> list[Any]:
        if self.postgres:
            return list(await connection.fetch(self.sql(text), *args))
        async with connection.execute(text, args) as cursor:
            return list(await cursor.fetchall())

    async def execute(self, connection: Any, text: str, *args: Any) -> None:
        if self.postgres:
            await connection.execute(self.sql(text), *args)
        else:
            await connection.execute(text, args)


# Fixed column names, interpolated into the SQL below.
PATIENT_COLUMNS = (
    "id, study_id, arm_id, subject_code, age_years, sex, diagnosis, diagnosis_subtype, disease_status, ecog, "
    "risk_group, wbc_10e9_per_l, hemoglobin_g_per_l, platelets_10e9_per_l, marrow_blasts_pct, "
    "peripheral_blasts_pct, genetic_findings, markers, notes, icd10_code, icdo3_morphology, age_capped, "
    "version, created_at, updated_at, provenance"
)
JSON_COLUMNS = {"genetic_findings", "markers", "provenance"}
NAMES = [name.strip() for name in PATIENT_COLUMNS.split(",")]


def _value(name: str, value: Any) -> Any:
    if name in JSON_COLUMNS and isinstance(value, str):
        return msgspec.json.decode(value)
    if name.endswith("_id") or name == "id":
        return str(uuid.UUID(str(value))) if value is not None else None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _patient(row: Any) -> dict[str, Any]:
    return {name: _value(name, row[i]) for i, name in enumerate(NAMES)}


class RawApp:
    def __init__(self, url: str) -> None:
        self.db = Database(url)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.db.open()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = dict(scope["headers"])
        body = b""
        if scope["method"] == "POST":
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
        status, payload, extra = await self.dispatch(scope, headers, body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def role(self, connection: Any, headers: dict[bytes, bytes]) -> str | None:
        secret = headers.get(b"authorization", b"").decode().partition(" ")[2]
        token = hashlib.sha256(secret.encode()).hexdigest()
        rows = await self.db.rows(
            connection,
            "SELECT name, role, expires_at, revoked_at FROM api_tokens WHERE token_hash = ?",
            token,
        )
        if not rows or rows[0][3] is not None:
            return None
        return str(rows[0][0])

    async def dispatch(
        self, scope: dict[str, Any], headers: dict[bytes, bytes], body: bytes
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        path: str = scope["path"]
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "patients"] and len(parts) == 4:
            return await self.db.run(lambda c: self.get_patient(c, headers, uuid.UUID(parts[3])))
        if parts[:3] == ["api", "v1", "patients"]:
            return await self.db.run(lambda c: self.list_patients(c, headers, query))
        if parts[:3] == ["api", "v1", "adverse-events"] and scope["method"] == "POST":
            return await self.db.run(lambda c: self.create_adverse_event(c, headers, body), write=True)
        if parts[-1] == "adverse-event-incidence":
            return await self.db.run(lambda c: self.incidence(c, headers, uuid.UUID(parts[3])))
        if parts[-1] == "survival":
            return await self.db.run(lambda c: self.survival(c, headers, uuid.UUID(parts[3])))
        return 404, b"{}", []

    async def get_patient(self, c: Any, headers: dict[bytes, bytes], id: uuid.UUID) -> Any:
        if await self.role(c, headers) is None:
            return 401, b"{}", []
        rows = await self.db.rows(c, f"SELECT {PATIENT_COLUMNS} FROM patients WHERE id = ?", self.db.key(id))
        if not rows:
            return 404, b"{}", []
        return 200, msgspec.json.encode(_patient(rows[0])), []

    async def list_patients(self, c: Any, headers: dict[bytes, bytes], query: dict[str, str]) -> Any:
        if await self.role(c, headers) is None:
            return 401, b"{}", []
        limit, offset = int(query.get("limit", 50)), int(query.get("offset", 0))
        rows = await self.db.rows(
            c,
            # The total as a scalar subquery (answered from the (study_id, diagnosis) index), not
            # count(*) OVER (), which would build every matching row before the LIMIT.
            f"SELECT {PATIENT_COLUMNS}, (SELECT count(*) FROM patients WHERE study_id = ? AND diagnosis = ?) "
            "FROM patients WHERE study_id = ? AND diagnosis = ? ORDER BY id LIMIT ? OFFSET ?",
            self.db.key(uuid.UUID(query["study_id"])),
            query["diagnosis"],
            self.db.key(uuid.UUID(query["study_id"])),
            query["diagnosis"],
            limit,
            offset,
        )
        total = rows[0][-1] if rows else 0
        page = {"items": [_patient(r) for r in rows], "total": total, "limit": limit, "offset": offset}
        return 200, msgspec.json.encode(page), []

    async def create_adverse_event(self, c: Any, headers: dict[bytes, bytes], body: bytes) -> Any:
        actor = await self.role(c, headers)
        if actor is None:
            return 401, b"{}", []
        try:
            data = msgspec.json.decode(body, type=AdverseEventIn)
        except msgspec.ValidationError as exc:
            return 400, msgspec.json.encode({"detail": str(exc)}), []
        if not await self.db.rows(c, "SELECT 1 FROM patients WHERE id = ?", self.db.key(data.patient_id)):
            return 422, b"{}", []
        now = datetime.now(UTC)
        id = uuid.uuid4()
        record = {
            **msgspec.structs.asdict(data),
            "id": str(id),
            "patient_id": str(data.patient_id),
            "version": 1,
        }
        await self.db.execute(
            c,
            "INSERT INTO adverse_events (id, version, created_at, updated_at, provenance, patient_id, term, grade, "
            "grading_system, onset_day, resolution_day, outcome) VALUES (?, 1, ?, ?, '[]', ?, ?, ?, ?, ?, ?, ?)",
            self.db.key(id),
            now if self.db.postgres else now.isoformat(" "),
            now if self.db.postgres else now.isoformat(" "),
            self.db.key(data.patient_id),
            data.term,
            data.grade,
            data.grading_system,
            data.onset_day,
            data.resolution_day,
            data.outcome,
        )
        if self.db.postgres:  # the chain's lock and last hash in one round trip, as the service's
            previous = await self.db.rows(c, "SELECT last_hash FROM audit_chain_head(7300421)")
        else:
            previous = await self.db.rows(c, "SELECT hash FROM audit_records ORDER BY seq DESC LIMIT 1")
        prev = (previous[0][0] if previous else None) or "0" * 64
        changes = {k: [None, v] for k, v in record.items() if v is not None}
        content = json.dumps({"changes": changes, "prev_hash": prev, "actor": actor}, sort_keys=True).encode()
        await self.db.execute(
            c,
            "INSERT INTO audit_records (recorded_at, actor, actor_role, action, resource_type, resource_id, changes, "
            "prev_hash, hash, hash_alg) VALUES (?, ?, 'curator', 'create', 'adverse_event', ?, ?, ?, ?, 'sha256')",
            now if self.db.postgres else now.isoformat(" "),
            actor,
            self.db.key(id),
            json.dumps(changes),
            prev,
            hashlib.sha256(content).hexdigest(),
        )
        payload = msgspec.json.encode(record)
        key = headers.get(b"idempotency-key")
        if key:
            await self.db.execute(
                c,
                "INSERT INTO idempotency_keys (actor, key, request_hash, status_code, response_body, created_at) "
                "VALUES (?, ?, ?, 201, ?, ?)",
                actor,
                key.decode(),
                hashlib.sha256(body).hexdigest(),
                payload.decode(),
                now if self.db.postgres else now.isoformat(" "),
            )
        return 201, payload, [(b"location", f"/api/v1/adverse-events/{id}".encode())]

    async def incidence(self, c: Any, headers: dict[bytes, bytes], study_id: uuid.UUID) -> Any:
        if await self.role(c, headers) is None:
            return 401, b"{}", []
        rows = await self.db.rows(
            c,
            "SELECT w.term, p.arm_id, w.worst, count(*) FROM ("
            " SELECT patient_id, lower(term) AS term, max(coalesce(grade, 0)) AS worst FROM adverse_events"
            " WHERE patient_id IN (SELECT id FROM patients WHERE study_id = ?) GROUP BY patient_id, lower(term)"
            ") w JOIN patients p ON p.id = w.patient_id GROUP BY w.term, p.arm_id, w.worst",
            self.db.key(study_id),
        )
        return 200, msgspec.json.encode([[r[0], str(r[1]), r[2], r[3]] for r in rows]), []

    async def survival(self, c: Any, headers: dict[bytes, bytes], study_id: uuid.UUID) -> Any:
        if await self.role(c, headers) is None:
            return 401, b"{}", []
        rows = await self.db.rows(c, SURVIVAL_SQL, self.db.key(study_id))
        groups: dict[Any, list[Any]] = {}
        for arm, end, event, n in rows:
            groups.setdefault(arm, []).append((end, event, n))
        samples, curves = [], []
        for cells in groups.values():
            end, event, n = (np.array(column) for column in zip(*cells, strict=True))
            times = np.repeat(end.astype(float) - 1.0, n.astype(int))
            events = np.repeat(event.astype(bool), n.astype(int))
            samples.append((times, events))
            km = kaplan_meier(times, events)
            curves.append({"time": km.time.tolist(), "surv": km.surv.tolist(), "lower": km.lower.tolist()})
        test = log_rank(samples)
        return 200, msgspec.json.encode({"curves": curves, "p": test.p_value if test else None}), []


# Overall survival from day 1 to the first dated death, else censored at the last recorded study
# day (the maintained column); one row per (arm, end day, event) with its count.
SURVIVAL_SQL = """
SELECT p.arm_id, coalesce(d.day, p.last_recorded_day) AS end_day,
       CASE WHEN d.day IS NULL THEN 0 ELSE 1 END AS event, count(*)
FROM patients p
LEFT JOIN (SELECT patient_id, min(study_day) AS day FROM outcomes
           WHERE kind = 'event' AND event_type = 'death' AND study_day IS NOT NULL
           GROUP BY patient_id) d ON d.patient_id = p.id
WHERE p.study_id = ? AND coalesce(d.day, p.last_recorded_day) IS NOT NULL
GROUP BY p.arm_id, coalesce(d.day, p.last_recorded_day), CASE WHEN d.day IS NULL THEN 0 ELSE 1 END
"""


if __name__ == "__main__":
    uvicorn.run(
        RawApp(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False
    )
