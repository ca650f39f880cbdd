"""Alembic owns the schema: head matches the models exactly, and downgrade works."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from service.db.migrate import downgrade, upgrade
from service.db.models import metadata
from tests.databases import backends, fresh_database


async def _inspect(url: str) -> tuple[list[Any], list[str]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:

            def run(sync_connection: Any) -> tuple[list[Any], list[str]]:
                context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
                return compare_metadata(context, metadata), inspect(sync_connection).get_table_names()

            return await connection.run_sync(run)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", backends())
def test_upgrade_matches_models_and_downgrade_empties(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path, migrate=False) as url:
        upgrade(url)
        differences, tables = asyncio.run(_inspect(url))
        assert differences == []
        assert set(metadata.tables) <= set(tables)
        downgrade(url)
        _, tables = asyncio.run(_inspect(url))
        assert set(tables) <= {"alembic_version"}
        upgrade(url)
        assert asyncio.run(_inspect(url))[0] == []
