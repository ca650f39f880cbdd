"""Loads the curated seed dataset (one YAML file per source document) through the same structs
and repositories as the API, so the seed obeys every rule an API client does.

Each document loads in one transaction: an invalid record rejects the whole document with a
message naming the file and the record. A document whose study is already present (matched by
`source_document`) is skipped, so loading twice changes nothing; `replace=True` reloads it."""

from pathlib import Path
from typing import Any

import msgspec
import yaml
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.agents.schemas import AgentCreate
from service.agents.service import AgentRepository, agent_ids_by_name
from service.db import models
from service.db.models import utcnow
from service.db.session import create_engine, session_factory
from service.errors import DomainError
from service.exchange import study_document
from service.settings import Settings
from service.studies.service import StudyRepository

DATA_DIR = Path(__file__).parent / "data"
AGENTS_FILE = "agents.yaml"
SEED_ACTOR = ("seed-loader", "system")


class SeedError(Exception):
    """A data file could not be loaded; the message names the file and the record."""


def _raise_problems(name: str, plan: study_document.Plan) -> None:
    if plan.problems:
        listed = "; ".join(f"{p.pointer}: {p.message}" for p in plan.problems)
        raise SeedError(f"{name}: {listed}")


async def _load_document(session: AsyncSession, name: str, data: dict[str, Any], replace: bool) -> str:
    source = data["document"]
    existing = await session.scalar(select(models.Study.id).where(models.Study.source_document == source))
    if existing is not None:
        if not replace:
            return f"{name}: already loaded, unchanged"
        await StudyRepository().delete(session, existing, True)
        await session.flush()
    plan = study_document.plan(
        study_document.Document.from_builtins(data),
        await agent_ids_by_name(session),
        utcnow(),
        require_provenance=True,
    )
    _raise_problems(name, plan)
    await study_document.write(session, plan)
    return f"{name}: loaded 1 study, {plan.summary()}"


async def _load_agents(session: AsyncSession, records: list[dict[str, Any]]) -> int:
    """The agent catalogue: the agents a file lists and the database lacks."""
    known = await agent_ids_by_name(session)
    added = 0
    for i, record in enumerate(records):
        if str(record.get("name", "")).lower() in known:
            continue
        try:
            created = await AgentRepository().create(session, msgspec.convert(record, AgentCreate))
        except (msgspec.ValidationError, DomainError) as exc:
            raise SeedError(f"{AGENTS_FILE}: /agents/{i}: {exc}") from exc
        known[created.name.lower()] = created.id
        added += 1
    return added


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SeedError(f"{path.name}: not valid YAML: {exc}") from exc


async def load_files(session_maker: Any, paths: list[Path], replace: bool = False) -> list[str]:
    """Load the agent catalog, then each document file in its own transaction."""
    report: list[str] = []
    agents_path = DATA_DIR / AGENTS_FILE
    async with session_maker() as session, session.begin():
        session.info["actor"] = SEED_ACTOR
        added = await _load_agents(session, _read(agents_path)["agents"])
    report.append(f"{AGENTS_FILE}: {added} agents added")
    for path in paths:
        data = _read(path)
        try:
            async with session_maker() as session, session.begin():
                session.info["actor"] = SEED_ACTOR
                session.info["reason"] = f"seed dataset: {path.name}"
                report.append(await _load_document(session, path.name, data, replace))
        except (KeyError, TypeError, AttributeError) as exc:
            raise SeedError(f"{path.name}: malformed record: {exc!r}") from exc
    return report


def document_files() -> list[Path]:
    return sorted(DATA_DIR.glob("[0-9][0-9][0-9]_*.yaml"))


async def load_all(settings: Settings, replace: bool = False) -> list[str]:
    engine = create_engine(settings)
    try:
        return await load_files(session_factory(engine), document_files(), replace)
    finally:
        await engine.dispose()


async def seed_if_empty(settings: Settings) -> list[str]:
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            if await session.scalar(select(func.count()).select_from(models.Study)):
                return []
        return await load_files(session_factory(engine), document_files())
    finally:
        await engine.dispose()
