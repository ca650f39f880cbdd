"""A whole study as one document, and loading it: the seed files and the import endpoints share
this format and this loader, so both obey every rule an API client does.

The document nests what belongs together and names references by keys local to it:

    document: source file name (optional)        agents: [{name, targets, …}] (import only)
    study: {title, design, …}
    arms: [{key, label, agents: [agent names], …}]
    sites: [{code, institution, …}]
    patients: [{subject_code, arm: arm key, site: site code, …,
                treatments: [{key, components: [{agent: name, …}], …}],
                adverse_events: [{treatment: treatment key, …}], outcomes: [{treatment: key, …}]}]
    reported_results: [{arm: arm key, definition: {arms: [arm keys], …}, …}]

Loading is in two steps, so that a large document is fast and holds nothing while it is checked:
1. `plan` (pure, no I/O; the import runs it in a worker thread): every record is decoded into
   its typed record (service.exchange.records), converted to its create struct, and checked
   with the rules a create checks (service/*/service.py `rules`, de-identification), the keys
   resolved within the document, duplicates refused naming both pointers. Every problem is
   reported with the JSON pointer of its record (and field); a record whose parent was refused
   is not attempted (its problem is the parent's). The plan holds the rows to insert.
2. `write`: when the plan has no problem, its rows are inserted with one multi-row statement per
   table and batch, and one audit record stands for the whole load (`import`: the document's
   SHA-256 and the counts), chained at commit (service.audit.trail)."""

import copy
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.adverse_events.schemas import AdverseEventCreate
from service.adverse_events.service import AdverseEventRepository
from service.agents.schemas import AgentCreate
from service.agents.service import AgentRepository, name_key
from service.arms.schemas import ArmCreate
from service.arms.service import ArmRepository
from service.audit import trail
from service.common.deidentification import check_free_text
from service.common.repository import Repository
from service.common.types import NO_NUL, Name
from service.db import models
from service.db.ids import uuid7
from service.errors import DomainError
from service.exchange import records as r
from service.outcomes.schemas import VARIANTS
from service.outcomes.service import OutcomeRepository
from service.patients.schemas import PatientCreate
from service.patients.service import PatientRepository
from service.reported_results.schemas import ReportedResultCreate
from service.reported_results.service import ReportedResultRepository
from service.sites.schemas import SiteCreate
from service.sites.service import SiteRepository
from service.studies.schemas import StudyCreate
from service.studies.service import StudyRepository
from service.treatments.schemas import TreatmentCreate
from service.treatments.service import TreatmentRepository

OUTCOME_CREATES = {variant.__struct_config__.tag: variant for variant in VARIANTS}
KINDS = ("arms", "sites", "patients", "treatments", "adverse_events", "outcomes", "reported_results")
# Rows per INSERT statement: within SQLite's and asyncpg's limits on bound parameters, and few
# enough that encoding one statement's parameters (the driver does it in one go, JSON columns
# included) does not hold the event loop: 500 rows held it for up to 38 ms under the mixed load
# (bench/stalls.py).
BATCH_ROWS = 100


class Problem(msgspec.Struct, frozen=True):
    pointer: str
    message: str


class JsonDocument(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The import body's envelope; its records stay raw JSON until `plan` decodes each one, so
    that a problem in one is reported with its pointer and the others are still checked."""

    format: Literal["leukemia-registry/study"]
    format_version: Literal[1]
    study: msgspec.Raw
    exported_at: Annotated[str, Meta(max_length=40, pattern=NO_NUL)] | None = None
    document: Name | None = None
    agents: list[msgspec.Raw] = []
    arms: list[msgspec.Raw] = []
    sites: list[msgspec.Raw] = []
    patients: list[msgspec.Raw] = []
    reported_results: list[msgspec.Raw] = []


@dataclass(frozen=True)
class Document:
    """A document's records, each raw JSON (a request body) or builtins (YAML, a registry record)."""

    source_document: str | None
    study: Any
    agents: list[Any] = field(default_factory=list)
    arms: list[Any] = field(default_factory=list)
    patients: list[Any] = field(default_factory=list)
    reported_results: list[Any] = field(default_factory=list)
    sites: list[Any] = field(default_factory=list)
    digest: str = ""  # SHA-256 of the document as received
    # What the import should say about the source (a registry record of a non-acute leukemia, …).
    warnings: list[str] = field(default_factory=list)
    # A trial registry record (kept as received, service.exchange.ctgov.sources) and its version.
    from_registry: bool = False
    registry_version: str | None = None

    @classmethod
    def from_json(cls, body: bytes) -> "Document":
        """Raises msgspec.ValidationError or DecodeError for a malformed envelope."""
        envelope = msgspec.json.decode(body, type=JsonDocument)
        return cls(
            envelope.document,
            envelope.study,
            envelope.agents,
            envelope.arms,
            envelope.patients,
            envelope.reported_results,
            envelope.sites,
            hashlib.sha256(body).hexdigest(),
        )

    @classmethod
    def from_builtins(cls, data: dict[str, Any]) -> "Document":
        encoded = msgspec.json.encode(data)
        return cls(
            data.get("document"),
            data.get("study", {}),
            list(data.get("agents", [])),
            list(data.get("arms", [])),
            list(data.get("patients", [])),
            list(data.get("reported_results", [])),
            list(data.get("sites", [])),
            hashlib.sha256(encoded).hexdigest(),
            list(data.get("warnings", [])),
            from_registry="registry_version" in data,
            registry_version=data.get("registry_version"),
        )


@dataclass
class Plan:
    """What `write` inserts, table by table in the order of their foreign keys."""

    problems: list[Problem] = field(default_factory=list)
    rows: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    agents_added: int = 0
    study_id: Any = None
    digest: str = ""
    source_document: str | None = None

    def add(self, model: Any, values: dict[str, Any]) -> None:
        self.rows.setdefault(model, []).append(values)

    def summary(self) -> str:
        return ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in self.counts.items())


def _pointer_of(path: str) -> str:
    """msgspec's `$.a[0].b` as a JSON pointer suffix `/a/0/b`."""
    out = []
    for name, index in _PATH.findall(path):
        out.append(f"/{name or index}")
    return "".join(out)


_PATH = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_AT = " - at `$"


class _Refused(Exception):
    """A record was refused; its problem is in the plan."""


class _Planner:
    def __init__(self, document: Document, agents: dict[str, Any], now: datetime, require_provenance: bool):
        self.document = document
        self.agents = dict(agents)  # lower-case name -> id
        self.agent_keys = {name_key(name): name for name in agents}
        self.now = now
        self.require_provenance = require_provenance
        self.plan = Plan(digest=document.digest, source_document=document.source_document)
        self.arms: dict[str, Any] = {}
        self.arm_pointer: dict[str, str] = {}
        self.sites: dict[str, Any] = {}  # lower-case code -> id
        self.site_pointer: dict[str, str] = {}
        self.refused: set[tuple[str, Any]] = set()

    def refuse(self, pointer: str, message: str) -> None:
        self.plan.problems.append(Problem(pointer, message))
        raise _Refused

    def decode(self, item: Any, kind: Any, pointer: str) -> Any:
        """A typed record from raw JSON or builtins; a type error is refused with its pointer."""
        try:
            if isinstance(item, msgspec.Raw):
                return msgspec.json.decode(item, type=kind)
            return msgspec.convert(item, kind)
        except msgspec.ValidationError as exc:
            message, _, where = str(exc).partition(_AT)
            self.refuse(pointer + _pointer_of("$" + where.rstrip("`")), message)
        except msgspec.DecodeError as exc:
            self.refuse(pointer, f"not valid JSON: {exc}")

    def provenance(self, entries: list[Any], pointer: str) -> list[dict[str, Any]]:
        if self.require_provenance and not entries:
            self.refuse(f"{pointer}/provenance", "every curated record needs provenance")
        out = []
        for i, entry in enumerate(entries):
            values = {k: v for k, v in msgspec.structs.asdict(entry).items() if v is not None}
            values = msgspec.to_builtins(values)
            values.setdefault("source_document", self.document.source_document)
            if values["source_document"] is None:
                self.refuse(
                    f"{pointer}/provenance/{i}/source_document", "provenance needs its source document"
                )
            out.append(values)
        return out

    def row(
        self,
        repository: Repository[Any],
        create: Any,
        record: Any,
        pointer: str,
        links: dict[str, Any],
        leave_out: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """The row a create with these values would store, checked by the create's own rules."""
        values = {
            k: v
            for k, v in msgspec.structs.asdict(record).items()
            if k not in leave_out and k != "provenance"
        }
        values = {**msgspec.to_builtins(values), **links}
        values["provenance"] = self.provenance(record.provenance, pointer)
        try:
            data = msgspec.convert(values, create)
        except msgspec.ValidationError as exc:
            message, _, where = str(exc).partition(_AT)
            self.refuse(pointer + _pointer_of("$" + where.rstrip("`")), message)
        columns = repository.columns(data)
        try:
            check_free_text(columns)
            repository.rules(columns)
        except DomainError as exc:
            self.refuse(pointer + (f"/{exc.field.replace('.', '/')}" if exc.field else ""), exc.detail)
        return {**columns, "id": uuid7(), "version": 1, "created_at": self.now, "updated_at": self.now}

    def attempt(self, step: Any, *args: Any) -> Any:
        try:
            return step(*args)
        except _Refused:
            return None

    def run(self) -> Plan:
        for i, item in enumerate(self.document.agents):
            self.attempt(self.agent, item, f"/agents/{i}")
        study = self.attempt(self.study)
        if study is None:
            return self.plan
        for i, item in enumerate(self.document.arms):
            self.attempt(self.arm, item, f"/arms/{i}")
        for i, item in enumerate(self.document.sites):
            self.attempt(self.site, item, f"/sites/{i}")
        codes: dict[str, str] = {}
        for i, item in enumerate(self.document.patients):
            self.attempt(self.patient, item, f"/patients/{i}", codes)
        for i, item in enumerate(self.document.reported_results):
            self.attempt(self.reported_result, item, f"/reported_results/{i}")
        return self.plan

    def agent(self, item: Any, pointer: str) -> None:
        record = self.decode(item, r.AgentRecord, pointer)
        name = record.name.lower()
        if name in self.agents:
            return  # matched by name: the catalogue's agent is used
        values = self.row(AgentRepository(), AgentCreate, record, pointer, {})
        twin = self.agent_keys.get(values["name_key"])
        if twin is not None:
            self.refuse(f"{pointer}/name", f"agent {record.name!r} looks the same as agent {twin!r}")
        self.agent_keys[values["name_key"]] = record.name
        self.agents[name] = values["id"]
        self.plan.add(models.Agent, values)
        self.plan.agents_added += 1

    def study(self) -> Any:
        record = self.decode(self.document.study, r.StudyRecord, "/study")
        values = self.row(
            StudyRepository(),
            StudyCreate,
            record,
            "/study",
            {"source_document": self.document.source_document},
        )
        self.plan.add(models.Study, values)
        self.plan.study_id = values["id"]
        return values

    def agent_id(self, name: str, pointer: str) -> Any:
        found = self.agents.get(name.lower())
        if found is None:
            self.refuse(pointer, f"agent {name!r} is neither stored nor listed in the document's agents")
        return found

    def local(self, table: dict[str, Any], key: str, kind: str, pointer: str) -> Any:
        if key in table:
            return table[key]
        if (kind, key) in self.refused:
            raise _Refused  # its problem is the parent's
        self.refuse(pointer, f"no {kind} with key {key!r} in this document")

    def arm(self, item: Any, pointer: str) -> None:
        record = self.decode(item, r.ArmRecord, pointer)
        if record.key in self.arm_pointer:
            self.refuse(
                f"{pointer}/key",
                f"arm key {record.key!r} is already used by {self.arm_pointer[record.key]}/key",
            )
        self.arm_pointer[record.key] = pointer
        try:
            ids = [self.agent_id(name, f"{pointer}/agents/{j}") for j, name in enumerate(record.agents)]
            values = self.row(
                ArmRepository(),
                ArmCreate,
                record,
                pointer,
                {"study_id": self.plan.study_id, "agent_ids": list(dict.fromkeys(ids))},
                leave_out=("key", "agents"),
            )
        except _Refused:
            self.refused.add(("arm", record.key))
            raise
        labels = {a["label"] for a in self.plan.rows.get(models.Arm, [])}
        if values["label"] in labels:
            self.refused.add(("arm", record.key))
            self.refuse(f"{pointer}/label", f"the study already has an arm labelled {values['label']!r}")
        self.plan.add(models.Arm, values)
        for agent in dict.fromkeys(ids):
            self.plan.add(models.ArmAgent, {"arm_id": values["id"], "agent_id": agent})
        self.arms[record.key] = values["id"]
        self.plan.counts["arms"] += 1

    def site(self, item: Any, pointer: str) -> None:
        record = self.decode(item, r.SiteRecord, pointer)
        code = record.code.lower()  # codes are compared without case, as the API does
        if code in self.site_pointer:
            self.refused.add(("site", code))
            self.refuse(
                f"{pointer}/code",
                f"site code {record.code!r} is already used by {self.site_pointer[code]}/code",
            )
        self.site_pointer[code] = pointer
        try:
            values = self.row(SiteRepository(), SiteCreate, record, pointer, {"study_id": self.plan.study_id})
        except _Refused:
            self.refused.add(("site", code))
            raise
        self.plan.add(models.Site, values)
        self.sites[code] = values["id"]
        self.plan.counts["sites"] += 1

    def patient(self, item: Any, pointer: str, codes: dict[str, str]) -> None:
        record = self.decode(item, r.PatientRecord, pointer)
        arm_id = (
            self.local(self.arms, record.arm, "arm", f"{pointer}/arm") if record.arm is not None else None
        )
        site_id = (
            self.local(self.sites, record.site.lower(), "site", f"{pointer}/site")
            if record.site is not None
            else None
        )
        values = self.row(
            PatientRepository(),
            PatientCreate,
            record,
            pointer,
            {"study_id": self.plan.study_id, "arm_id": arm_id, "site_id": site_id},
            leave_out=("arm", "site", "treatments", "adverse_events", "outcomes"),
        )
        code = values["subject_key"]
        if code in codes:
            self.refuse(
                f"{pointer}/subject_code",
                f"subject code {values['subject_code']!r} is already used (or looks the same as one used) by {codes[code]}",
            )
        codes[code] = pointer
        self.plan.add(models.Patient, values)
        self.plan.counts["patients"] += 1
        treatments: dict[str, Any] = {}
        treatment_pointer: dict[str, str] = {}
        refused: set[str] = set()
        for j, treatment in enumerate(record.treatments):
            where = f"{pointer}/treatments/{j}"
            if treatment.key is not None and treatment.key in treatment_pointer:
                self.attempt(
                    self.refuse,
                    f"{where}/key",
                    f"treatment key {treatment.key!r} is already used by {treatment_pointer[treatment.key]}/key",
                )
                continue
            if treatment.key is not None:
                treatment_pointer[treatment.key] = where
            made = self.attempt(self.treatment, values["id"], treatment, where)
            if treatment.key is not None:
                if made is None:
                    refused.add(treatment.key)
                else:
                    treatments[treatment.key] = made
        for kind, items in (("adverse_events", record.adverse_events), ("outcomes", record.outcomes)):
            for j, child in enumerate(items):
                where = f"{pointer}/{kind}/{j}"
                self.attempt(self.child, kind, values["id"], child, where, treatments, refused)

    def treatment(self, patient_id: Any, record: Any, pointer: str) -> Any:
        components = [
            {
                **{k: v for k, v in msgspec.structs.asdict(c).items() if k != "agent" and v is not None},
                "agent_id": self.agent_id(c.agent, f"{pointer}/components/{k}/agent"),
            }
            for k, c in enumerate(record.components)
        ]
        values = self.row(
            TreatmentRepository(),
            TreatmentCreate,
            record,
            pointer,
            {"patient_id": patient_id, "components": msgspec.to_builtins(components)},
            leave_out=("key", "components"),
        )
        self.plan.add(models.Treatment, values)
        for position, component in enumerate(components):
            self.plan.add(
                models.TreatmentComponent,
                {"id": uuid7(), "treatment_id": values["id"], "position": position, **component},
            )
        self.plan.counts["treatments"] += 1
        return values["id"]

    def child(
        self,
        kind: str,
        patient_id: Any,
        record: Any,
        pointer: str,
        treatments: dict[str, Any],
        refused: set[str],
    ) -> None:
        links: dict[str, Any] = {"patient_id": patient_id}
        key = getattr(record, "treatment", None)
        if key is not None:
            if key in refused:
                raise _Refused  # its problem is the treatment's
            if key not in treatments:
                self.refuse(f"{pointer}/treatment", f"no treatment with key {key!r} in this document")
            links["treatment_id"] = treatments[key]
        repository: Repository[Any]
        create: Any
        if kind == "outcomes":
            repository, create = OutcomeRepository(), OUTCOME_CREATES[type(record).__struct_config__.tag]
        else:
            repository, create = AdverseEventRepository(), AdverseEventCreate
        values = self.row(repository, create, record, pointer, links, leave_out=("treatment",))
        self.plan.add(models.AdverseEvent if kind == "adverse_events" else models.Outcome, values)
        self.plan.counts[kind] += 1

    def reported_result(self, item: Any, pointer: str) -> None:
        record = self.decode(item, r.ReportedResultRecord, pointer)
        links: dict[str, Any] = {"study_id": self.plan.study_id}
        links["arm_id"] = self.local(self.arms, record.arm, "arm", f"{pointer}/arm") if record.arm else None
        definition = record.definition
        if isinstance(definition, dict) and "arms" in definition:
            # Comparisons name their arms by this document's keys.
            keys = definition["arms"]
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                self.refuse(
                    f"{pointer}/definition/arms", "a comparison names its arms by their keys (strings)"
                )
            ids = [
                self.local(self.arms, key, "arm", f"{pointer}/definition/arms/{j}")
                for j, key in enumerate(keys)
            ]
            definition = {
                **{k: v for k, v in definition.items() if k != "arms"},
                "arm_ids": [str(i) for i in ids],
            }
        links["definition"] = definition
        values = self.row(
            ReportedResultRepository(), ReportedResultCreate, record, pointer, links, leave_out=("arm",)
        )
        self.plan.add(models.ReportedResult, values)
        self.plan.counts["reported_results"] += 1


def plan(
    document: Document, agents: dict[str, Any], now: datetime, *, require_provenance: bool = False
) -> Plan:
    """Check every record of `document` and lay out its rows (pure: no I/O). `agents` maps the
    catalogue's lower-case names to ids."""
    return _Planner(document, agents, now, require_provenance).run()


# Tables in the order their foreign keys need.
ORDER = (
    models.Agent,
    models.Study,
    models.Arm,
    models.ArmAgent,
    models.Site,
    models.Patient,
    models.Treatment,
    models.TreatmentComponent,
    models.AdverseEvent,
    models.Outcome,
    models.ReportedResult,
)


def _defaults(model: Any, keys: Iterable[str]) -> dict[str, Any]:
    """Per column, a function giving the model's default value (None where it has none)."""
    out: dict[str, Any] = {}
    for key in keys:
        info = model.model_fields.get(key)
        if info is not None and info.default_factory is not None:
            out[key] = info.default_factory
        else:
            default = None if info is None or info.is_required() else info.default
            # A fresh copy only of a mutable default (a list): copying None cost a call per cell.
            out[key] = (
                (lambda value=default: copy.deepcopy(value))
                if isinstance(default, list | dict)
                else (lambda value=default: value)
            )
    return out


def _batches(rows: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def insert_rows(session: AsyncSession, rows_by_model: dict[Any, list[dict[str, Any]]]) -> None:
    """Insert laid-out rows table by table, in the order of their foreign keys, several rows per
    statement."""
    connection = await session.connection()
    for model in ORDER:
        rows = rows_by_model.get(model, [])
        if not rows:
            continue
        table: Any = getattr(model, "__table__")  # noqa: B009 - SQLModel declares no __table__
        # Every row of a table gets the same columns (multi-row VALUES need one shape): a column
        # a row leaves out (a field of another outcome kind) takes the model's default.
        keys = {key for row in rows for key in row}
        defaults = _defaults(model, keys)
        # Shaped a batch at a time, each sent before the next is shaped: shaping a table's
        # thousands of rows in one go held the event loop for 40 ms (sampled under an import load).
        for batch in _batches(rows, BATCH_ROWS):
            shaped = [{key: row[key] if key in row else defaults[key]() for key in keys} for row in batch]
            await connection.execute(insert(table), shaped)


async def write(session: AsyncSession, plan: Plan) -> None:
    """Insert the plan's rows, then queue the one audit record of the load: the study's
    `create`, with the document's SHA-256 and the counts of what came with it. A unique
    constraint (the study's source document already stored) surfaces as IntegrityError to the
    caller."""
    await insert_rows(session, plan.rows)
    await trail.record(
        session,
        "create",
        "study",
        plan.study_id,
        {
            "source_document": [None, plan.source_document],
            "document_sha256": [None, plan.digest],
            "records": [None, {**plan.counts, "agents": plan.agents_added}],
        },
    )
