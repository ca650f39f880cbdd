"""One study as the document `study_document` loads, streamed patient by patient.

Every record carries the fields its create struct accepts (values that are null are left out);
ids become keys local to the document (`arm-1`…, `t1`… within a patient), agents are named, and
the agents the study uses are listed, so the document imports into an empty database. Records
come in the order they were created (ids are time-ordered UUIDv7), so exporting an imported
document gives the same document again.

Patients are read in batches with their treatments, adverse events and outcomes, inside one
read transaction (a consistent snapshot on both databases), so memory stays bounded by a batch
whatever the study's size."""

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.access.scope import current_scope
from service.adverse_events.schemas import AdverseEventCreate
from service.agents.schemas import AgentCreate
from service.arms.schemas import ArmCreate
from service.common.repository import get_visible
from service.data_cuts import clock
from service.db import models
from service.outcomes.schemas import VARIANTS
from service.patients.schemas import PatientCreate
from service.reported_results.schemas import ReportedResultCreate
from service.sites.schemas import SiteCreate
from service.studies.schemas import StudyCreate
from service.treatments.schemas import Component, TreatmentCreate

FORMAT = "leukemia-registry/study"
FORMAT_VERSION = 1
BATCH = 500


def _fields(struct: Any, *leave_out: str) -> tuple[str, ...]:
    return tuple(f.name for f in msgspec.structs.fields(struct) if f.name not in leave_out)


STUDY = _fields(StudyCreate, "source_document")
AGENT = _fields(AgentCreate)
ARM = _fields(ArmCreate, "study_id", "agent_ids")
PATIENT = _fields(PatientCreate, "study_id", "arm_id", "site_id")
SITE = _fields(SiteCreate, "study_id")
TREATMENT = _fields(TreatmentCreate, "patient_id", "components")
COMPONENT = _fields(Component, "agent_id")
ADVERSE_EVENT = _fields(AdverseEventCreate, "patient_id", "treatment_id")
OUTCOME = {
    variant.__struct_config__.tag: _fields(variant, "patient_id", "treatment_id") for variant in VARIANTS
}
REPORTED_RESULT = _fields(ReportedResultCreate, "study_id", "arm_id")


def row_values(row: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The row's values for `fields` as JSON-ready builtins, nulls left out."""
    # A result row by its mapping (a column named like a tuple method, `count`, stays a column).
    mapping = getattr(row, "_mapping", None)
    picked = {name: mapping[name] if mapping is not None else getattr(row, name) for name in fields}
    builtins: dict[str, Any] = msgspec.to_builtins(
        {name: value for name, value in picked.items() if value is not None}
    )
    return builtins


def without_empty(value: Any) -> Any:
    """`value` without null, empty-string, empty-list or empty-object members, at any depth
    (FHIR allows none of them; registry records leave them out)."""
    if isinstance(value, dict):
        out = {k: without_empty(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, [], {}, "")}
    if isinstance(value, list):
        return [v for v in (without_empty(v) for v in value) if v not in (None, [], {}, "")]
    return value


class StudyTree:
    """What a study's export needs besides its patients: the study, arms, agents, keys."""

    def __init__(
        self,
        study: Any,
        arms: list[Any],
        arm_agents: dict[UUID, list[str]],
        agents: list[Any],
        sites: list[Any] | None = None,
    ) -> None:
        self.study = study
        self.sites = sites or []
        self.site_codes = {site.id: site.code for site in self.sites}
        self.arms = arms
        self.arm_keys = {arm.id: f"arm-{i}" for i, arm in enumerate(arms, start=1)}
        self.arm_agents = arm_agents
        self.agents = agents
        self.agent_names = {agent.id: agent.name for agent in agents}


async def read_tree(session: AsyncSession, study_id: UUID) -> StudyTree | None:
    study = await get_visible(session, models.Study, study_id)
    if study is None:
        return None
    arms = list(
        await session.scalars(
            select(models.Arm).where(models.Arm.study_id == study_id).order_by(col(models.Arm.id))
        )
    )
    pairs = (
        await session.execute(
            select(models.ArmAgent.arm_id, models.Agent.name)
            .join(models.Agent, col(models.Agent.id) == col(models.ArmAgent.agent_id))
            .where(col(models.ArmAgent.arm_id).in_([arm.id for arm in arms]))
            .order_by(col(models.Agent.name))
        )
    ).all()
    arm_agents: dict[UUID, list[str]] = {}
    for arm_id, name in pairs:
        arm_agents.setdefault(arm_id, []).append(name)
    used = (
        select(models.TreatmentComponent.agent_id)
        .join(models.Treatment, col(models.Treatment.id) == col(models.TreatmentComponent.treatment_id))
        .join(models.Patient, col(models.Patient.id) == col(models.Treatment.patient_id))
        .where(current_scope().study_patients(study_id))
    ).union(select(models.ArmAgent.agent_id).where(col(models.ArmAgent.arm_id).in_([arm.id for arm in arms])))
    agents = list(
        await session.scalars(
            select(models.Agent)
            .where(col(models.Agent.id).in_(used.scalar_subquery()))
            .order_by(col(models.Agent.name))
        )
    )
    sites = list(
        await session.scalars(
            select(models.Site).where(models.Site.study_id == study_id).order_by(col(models.Site.id))
        )
    )
    return StudyTree(study, arms, arm_agents, agents, sites)


def study_section(tree: StudyTree) -> dict[str, Any]:
    return row_values(tree.study, STUDY)


def arm_section(tree: StudyTree) -> list[dict[str, Any]]:
    return [
        {"key": tree.arm_keys[arm.id], **row_values(arm, ARM), "agents": tree.arm_agents.get(arm.id, [])}
        for arm in tree.arms
    ]


async def reported_results(session: AsyncSession, tree: StudyTree) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(models.ReportedResult)
        .where(models.ReportedResult.study_id == tree.study.id)
        .order_by(col(models.ReportedResult.id))
    )
    section = []
    for row in rows:
        record = row_values(row, REPORTED_RESULT)
        if row.arm_id is not None:
            record["arm"] = tree.arm_keys[row.arm_id]
        definition = record.get("definition")
        if isinstance(definition, dict) and "arm_ids" in definition:
            definition = {k: v for k, v in definition.items() if k != "arm_ids"}
            definition["arms"] = [tree.arm_keys[UUID(str(i))] for i in row.definition["arm_ids"]]
            record["definition"] = definition
        section.append(record)
    return section


async def _children(session: AsyncSession, model: Any, parent: Any, ids: list[UUID]) -> dict[UUID, list[Any]]:
    grouped: dict[UUID, list[Any]] = {}
    if ids:
        for row in await _rows(
            session, select(*model.__table__.columns).where(col(parent).in_(ids)).order_by(col(model.id))
        ):
            grouped.setdefault(getattr(row, parent.key), []).append(row)
    return grouped


async def _rows(session: AsyncSession, query: Any) -> list[Any]:
    """Result rows, not ORM objects: an export reads a million of them and needs no identity
    map, change tracking or relationship loading (rows answer `row.column` all the same)."""
    return list((await session.execute(query)).all())


async def patient_batches(
    session: AsyncSession, tree: StudyTree, *, with_ids: bool = False, batch: int = BATCH
) -> AsyncIterator[list[dict[str, Any]]]:
    """Each patient with its treatments, adverse events and outcomes, `batch` patients at a time
    (keyset pagination on the time-ordered id); `with_ids` adds each record's `id` (and the
    derived values an import does not take, for the FHIR export)."""
    after: UUID | None = None
    while True:
        columns = models.Patient.__table__.columns  # type: ignore[attr-defined]
        query = select(*columns).where(current_scope().study_patients(tree.study.id))
        if after is not None:
            query = query.where(col(models.Patient.id) > after)
        patients = await _rows(session, query.order_by(col(models.Patient.id)).limit(batch))
        if not patients:
            return
        after = patients[-1].id
        ids = [p.id for p in patients]
        treatments = await _children(session, models.Treatment, models.Treatment.patient_id, ids)
        treatment_ids = [t.id for rows in treatments.values() for t in rows]
        components = await _children(
            session, models.TreatmentComponent, models.TreatmentComponent.treatment_id, treatment_ids
        )
        events = await _children(session, models.AdverseEvent, models.AdverseEvent.patient_id, ids)
        outcomes = await _children(session, models.Outcome, models.Outcome.patient_id, ids)
        yield [
            _patient(
                tree,
                p,
                treatments.get(p.id, []),
                components,
                events.get(p.id, []),
                outcomes.get(p.id, []),
                with_ids,
            )
            for p in patients
        ]


def _patient(
    tree: StudyTree,
    patient: Any,
    treatments: list[Any],
    components: dict[UUID, list[Any]],
    events: list[Any],
    outcomes: list[Any],
    with_ids: bool,
) -> dict[str, Any]:
    def values(row: Any, fields: Iterable[str]) -> dict[str, Any]:
        picked = row_values(row, fields)
        return {"id": str(row.id), **picked} if with_ids else picked

    record = values(patient, PATIENT)
    if patient.arm_id is not None:
        record["arm"] = tree.arm_keys[patient.arm_id]
    if patient.site_id is not None:
        record["site"] = tree.site_codes[patient.site_id]
    keys = {t.id: f"t{i}" for i, t in enumerate(treatments, start=1)}

    def linked(row: Any, fields: Iterable[str]) -> dict[str, Any]:
        item = values(row, fields)
        if row.treatment_id is not None and row.treatment_id in keys:
            item["treatment"] = keys[row.treatment_id]
        return item

    record["treatments"] = [
        {
            "key": keys[t.id],
            **values(t, TREATMENT),
            "components": [
                {**values(c, COMPONENT), "agent": tree.agent_names[c.agent_id]}
                for c in sorted(components.get(t.id, []), key=lambda c: c.position)
            ],
        }
        for t in treatments
    ]
    # With ids (the FHIR export) an event also carries the MedDRA code its term was curated to.
    derived = ("meddra_code",) if with_ids else ()
    record["adverse_events"] = [linked(e, (*ADVERSE_EVENT, *derived)) for e in events]
    record["outcomes"] = [{"kind": o.kind, **linked(o, OUTCOME[o.kind])} for o in outcomes]
    return record


async def consistent_snapshot(session: AsyncSession) -> None:
    """Postgres: every statement of the export reads the same snapshot (SQLite's read
    transaction already does)."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))


def header(tree: StudyTree) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": clock.now().isoformat(timespec="seconds"),
        "document": tree.study.source_document,
        "agents": [row_values(agent, AGENT) for agent in tree.agents],
        "study": study_section(tree),
        "arms": arm_section(tree),
        # Left out when the study has none, so that a document without sites exports as it came.
        **({"sites": [row_values(site, SITE) for site in tree.sites]} if tree.sites else {}),
    }


async def stream_json(open_session: Callable[[], Any], study_id: UUID) -> AsyncIterator[bytes]:
    """The document as bytes, written as it is read: `patients` last, a batch at a time."""
    encode = msgspec.json.Encoder().encode
    async with open_session() as session, session.begin():
        await consistent_snapshot(session)
        tree = await read_tree(session, study_id)
        if tree is None:  # deleted between the handler's check and the stream
            return
        opening = {**header(tree), "reported_results": await reported_results(session, tree)}
        yield encode(opening)[:-1] + b',"patients":['
        first = True
        async for patients in patient_batches(session, tree):
            chunk = b",".join(encode(p) for p in patients)
            yield chunk if first else b"," + chunk
            first = False
        yield b"]}"
