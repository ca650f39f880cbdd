"""The frozen databases of cuts: each cut's rows (service.data_cuts.rows) loaded, the first time an
analysis asks for them, into a SQLite file of its own, opened read-only and kept for the next
request — never into the live tables. At most `capacity` are kept per process; the least
recently used is closed and deleted first. One is built at a time per process (the build
decompresses, checks the digest and writes the rows in a worker process)."""

import asyncio
import hashlib
import shutil
import tempfile
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from service.common.heavy import offload
from service.data_cuts import rows
from service.db.session import session_factory
from service.errors import Conflict, DomainError

DAMAGED = "damaged"


class DamagedCut(DomainError):
    # The stored bytes no longer match their digest: nothing can be answered on the cut.
    status = 409
    slug = "data-cut-damaged"
    title = "The stored content of the data cut does not match its digest"


@dataclass
class CutDatabase:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    path: Path


def _build(compressed: bytes, sha256: str, path: Path) -> str | None:
    """Write the cut's database at `path`; the reason it cannot be, if so. Runs in a worker
    process (service.common.heavy): decoding a large cut holds its interpreter for a while, which
    the server's would pass on to every other request."""
    document = zlib.decompress(compressed)
    if hashlib.sha256(document).hexdigest() != sha256:
        return DAMAGED
    path.unlink(missing_ok=True)
    try:
        rows.load(document, path)
    except rows.UnreadableCut as exc:
        path.unlink(missing_ok=True)
        return str(exc)
    except BaseException:
        path.unlink(missing_ok=True)  # never a half-built database left to be opened
        raise
    return None


async def build(compressed: bytes, sha256: str, path: Path) -> None:
    refused = await offload(_build, compressed, sha256, path)
    if refused == DAMAGED:
        raise DamagedCut("its content's SHA-256 differs from the one recorded when it was taken")
    if refused is not None:
        raise Conflict(refused, field="data_cut")


class CutDatabases:
    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._directory = Path(tempfile.mkdtemp(prefix="registry-data-cuts-"))
        self._open: OrderedDict[UUID, CutDatabase] = OrderedDict()
        self._build_turn = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._open)

    async def sessions(
        self, cut_id: UUID, sha256: str, read_content: Callable[[], Awaitable[bytes]]
    ) -> async_sessionmaker[AsyncSession]:
        """The session factory of the cut's frozen database, built on first use."""
        database = self._open.get(cut_id)
        if database is None:
            async with self._build_turn:
                database = self._open.get(cut_id)  # built while this request waited its turn
                if database is None:
                    database = await self._build(cut_id, sha256, await read_content())
        self._open.move_to_end(cut_id)
        return database.sessions

    async def _build(self, cut_id: UUID, sha256: str, compressed: bytes) -> CutDatabase:
        path = self._directory / f"{cut_id}.sqlite"
        await build(compressed, sha256, path)
        engine = create_async_engine(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true")
        database = CutDatabase(engine, session_factory(engine), path)
        self._open[cut_id] = database
        while len(self._open) > self.capacity:
            _, evicted = self._open.popitem(last=False)
            # A request still reading it keeps its connection (and the unlinked file) until done.
            await evicted.engine.dispose()
            evicted.path.unlink(missing_ok=True)
        return database

    async def close(self) -> None:
        for database in self._open.values():
            await database.engine.dispose()
        self._open.clear()
        shutil.rmtree(self._directory, ignore_errors=True)
