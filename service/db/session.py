"""The async engine and the one-transaction-per-request session dependency."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from service.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """An engine for SQLite (foreign keys on) or Postgres (statement timeout set)."""
    url = make_url(settings.database_url)
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    elif url.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {
            "server_settings": {"statement_timeout": str(settings.statement_timeout_ms)}
        }
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _enable_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            # The driver's own transaction handling starts transactions late and turns the first
            # SAVEPOINT into the outer transaction (its RELEASE would commit): let SQLAlchemy
            # emit BEGIN itself, as its SQLite documentation recommends.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN")

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def provide_session(state: State, request: Request[Any, Any, Any]) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler returns, rolled back if it raises.
    The session knows who is acting and why, for the audit trail."""
    factory: async_sessionmaker[AsyncSession] = state.session_factory
    async with factory() as session, session.begin():
        identity = request.scope.get("user")
        if identity is not None:
            session.info["actor"] = (identity.name, identity.role)
        reason = (request.headers.get("x-change-reason") or "").strip()
        if reason:
            session.info["reason"] = reason[:500]
        yield session


# Handlers take the request's session as `db_session: DbSession`.
DbSession = NamedDependency[AsyncSession]
