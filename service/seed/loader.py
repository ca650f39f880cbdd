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

from service.adverse_events.schemas import AdverseEventCreate
from service.adverse_events.service import AdverseEventRepository
from service.agents.schemas import AgentCreate
from service.agents.service import AgentRepository, agent_ids_by_name
from service.arms.schemas import ArmCreate
from service.arms.service import ArmRepository
from service.db import models
from service.db.session import create_engine, session_factory
from service.errors import DomainError
from service.outcomes.schemas import OutcomeCreate
from service.outcomes.service import OutcomeRepository
from service.patients.schemas import PatientCreate
from service.patients.service import PatientRepository
from service.reported_results.schemas import ReportedResultCreate
from service.reported_results.service import ReportedResultRepository
from service.settings import Settings
from service.studies.schemas import StudyCreate
from service.studies.service import StudyRepository
from service.treatments.schemas import TreatmentCreate
from service.treatments.service import TreatmentRepository

DATA_DIR = Path(__file__).parent / "data"
AGENTS_FILE = "agents.yaml"
SEED_ACTOR = ("seed-loader", "system")


class SeedError(Exception):
    """A data file could not be loaded; the message names the file and the record."""


class _Document:
    """Turns one data file's records into create structs, resolving its local keys to ids."""

    def __init__(self, name: str, source_document: str, agents: dict[str, Any]) -> None:
        self.name = name
        self.source_document = source_document
        self.agents = agents
        self.arms: dict[str, Any] = {}
        self.treatments: dict[str, Any] = {}

    def struct(self, record: dict[str, Any], type_: Any, where: str) -> Any:
        if not record.get("provenance"):
            raise SeedError(f"{self.name}: {where}: every curated record needs provenance")
        record = dict(record)
        record["provenance"] = [
            {"source_document": self.source_document, **entry} for entry in record["provenance"]
        ]
        try:
            return msgspec.convert(record, type_)
        except msgspec.ValidationError as exc:
            raise SeedError(f"{self.name}: {where}: {exc}") from exc

    async def create(
        self, session: AsyncSession, repository: Any, record: dict[str, Any], type_: Any, where: str
    ) -> Any:
        """Validate `record` as the API would and store it with the area's repository."""
        data = self.struct(record, type_, where)
        try:
            return await repository.create(session, data)
        except DomainError as exc:
            field = f" (field `{exc.field}`)" if exc.field else ""
            raise SeedError(f"{self.name}: {where}: {exc.detail}{field}") from exc

    def agent_id(self, name: str, where: str) -> Any:
        try:
            return self.agents[name.lower()]
        except KeyError:
            raise SeedError(f"{self.name}: {where}: agent {name!r} is not in {AGENTS_FILE}") from None

    def with_treatment_id(self, record: dict[str, Any], subject_code: str, where: str) -> dict[str, Any]:
        """`record` with its `treatment` key (this file's local key) resolved to `treatment_id`."""
        record = dict(record)
        if "treatment" in record:
            key = f"{subject_code}/{record.pop('treatment')}"
            record["treatment_id"] = self.local(self.treatments, key, "treatment", where)
        return record

    def local(self, table: dict[str, Any], key: str, kind: str, where: str) -> Any:
        try:
            return table[key]
        except KeyError:
            raise SeedError(f"{self.name}: {where}: no {kind} with key {key!r} in this file") from None


async def _load_document(session: AsyncSession, name: str, data: dict[str, Any], replace: bool) -> str:
    source = data["document"]
    existing = await session.scalar(select(models.Study.id).where(models.Study.source_document == source))
    if existing is not None:
        if not replace:
            return f"{name}: already loaded, unchanged"
        await StudyRepository().delete(session, existing, True)

    doc = _Document(name, source, await agent_ids_by_name(session))
    study = await doc.create(
        session, StudyRepository(), {**data["study"], "source_document": source}, StudyCreate, "study"
    )
    counts = {
        "arms": 0,
        "patients": 0,
        "treatments": 0,
        "adverse_events": 0,
        "outcomes": 0,
        "reported_results": 0,
    }

    for i, arm in enumerate(data.get("arms", [])):
        where = f"arms[{i}]"
        arm = dict(arm)
        key = arm.pop("key")
        arm["agent_ids"] = [doc.agent_id(a, where) for a in arm.pop("agents", [])]
        created = await doc.create(session, ArmRepository(), {**arm, "study_id": study.id}, ArmCreate, where)
        doc.arms[key] = created.id
        counts["arms"] += 1

    for i, patient in enumerate(data.get("patients", [])):
        where = f"patients[{i}]"
        patient = dict(patient)
        treatments = patient.pop("treatments", [])
        adverse_events = patient.pop("adverse_events", [])
        outcomes = patient.pop("outcomes", [])
        if "arm" in patient:
            patient["arm_id"] = doc.local(doc.arms, patient.pop("arm"), "arm", where)
        created_patient = await doc.create(
            session, PatientRepository(), {**patient, "study_id": study.id}, PatientCreate, where
        )
        counts["patients"] += 1
        for j, treatment in enumerate(treatments):
            t_where = f"{where}.treatments[{j}]"
            treatment = dict(treatment)
            key = treatment.pop("key", None)
            treatment["components"] = [
                {
                    **{k: v for k, v in c.items() if k != "agent"},
                    "agent_id": doc.agent_id(c["agent"], t_where),
                }
                for c in treatment.get("components", [])
            ]
            created = await doc.create(
                session,
                TreatmentRepository(),
                {**treatment, "patient_id": created_patient.id},
                TreatmentCreate,
                t_where,
            )
            if key:
                doc.treatments[f"{patient['subject_code']}/{key}"] = created.id
            counts["treatments"] += 1
        for j, event in enumerate(adverse_events):
            e_where = f"{where}.adverse_events[{j}]"
            event = doc.with_treatment_id(event, patient["subject_code"], e_where)
            await doc.create(
                session,
                AdverseEventRepository(),
                {**event, "patient_id": created_patient.id},
                AdverseEventCreate,
                e_where,
            )
            counts["adverse_events"] += 1
        for j, outcome in enumerate(outcomes):
            o_where = f"{where}.outcomes[{j}]"
            outcome = doc.with_treatment_id(outcome, patient["subject_code"], o_where)
            await doc.create(
                session,
                OutcomeRepository(),
                {**outcome, "patient_id": created_patient.id},
                OutcomeCreate,
                o_where,
            )
            counts["outcomes"] += 1

    for i, result in enumerate(data.get("reported_results", [])):
        where = f"reported_results[{i}]"
        result = dict(result)
        if "arm" in result:
            result["arm_id"] = doc.local(doc.arms, result.pop("arm"), "arm", where)
        definition = result.get("definition")
        if isinstance(definition, dict) and "arms" in definition:
            # Comparisons name their arms by this file's keys.
            arm_keys = definition.pop("arms")
            result["definition"] = {
                **definition,
                "arm_ids": [doc.local(doc.arms, key, "arm", where) for key in arm_keys],
            }
        await doc.create(
            session, ReportedResultRepository(), {**result, "study_id": study.id}, ReportedResultCreate, where
        )
        counts["reported_results"] += 1

    listed = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())
    return f"{name}: loaded 1 study, {listed}"


async def _load_agents(session: AsyncSession, records: list[dict[str, Any]]) -> int:
    known = await agent_ids_by_name(session)
    doc = _Document(AGENTS_FILE, "", known)
    added = 0
    for i, record in enumerate(records):
        if record["name"].lower() in known:
            continue
        provenance = [dict(p) for p in record.get("provenance", [])]
        await doc.create(
            session, AgentRepository(), {**record, "provenance": provenance}, AgentCreate, f"agents[{i}]"
        )
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
