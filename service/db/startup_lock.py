"""One process at a time migrates and seeds a database: replicas started together on a fresh
database queue here instead of racing Alembic (the loser used to die on a duplicate
`alembic_version` row). Postgres: a session-level advisory lock, held on a connection of its own
by a helper thread while the caller migrates with its own engine. SQLite: an exclusive lock on
a file beside the database (the processes share the file system that holds the database)."""

import asyncio
import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

STARTUP_LOCK = 7_300_422


@contextmanager
def startup_lock(database_url: str, wait_s: float = 600.0) -> Iterator[None]:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            yield
            return
        path = Path(url.database).with_name(Path(url.database).name + ".startup-lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    acquired, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def hold() -> None:
        import asyncpg  # type: ignore[import-untyped]

        connection = await asyncpg.connect(dsn, timeout=30)
        try:
            await connection.execute("SELECT pg_advisory_lock($1)", STARTUP_LOCK)
            acquired.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait)
            await connection.execute("SELECT pg_advisory_unlock($1)", STARTUP_LOCK)
        finally:
            await connection.close()

    def run() -> None:
        try:
            asyncio.run(hold())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            acquired.set()

    thread = threading.Thread(target=run, name="startup-lock", daemon=True)
    thread.start()
    if not acquired.wait(wait_s):
        release.set()
        raise TimeoutError(f"could not take the startup lock within {wait_s:.0f} s")
    if failure:
        raise failure[0]
    try:
        yield
    finally:
        release.set()
        thread.join(timeout=30)
