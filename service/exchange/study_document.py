"""A whole study as one document, and loading it: the seed files and the import endpoint share
this format and this loader, so both obey every rule an API client does.

The document nests what belongs together and names references by keys local to it:

    document: source file name (optional)        agents: [{name, targets, …}] (import only)
    study: {title, design, …}
    arms: [{key, label, agents: [agent names], …}]
    patients: [{subject_code, arm: arm key, …,
                treatments: [{key, components: [{agent: name, …}], …}],
                adverse_events: [{treatment: treatment key, …}], outcomes: [{treatment: key, …}]}]
    reported_results: [{arm: arm key, definition: {arms: [arm keys], …}, …}]

Each record is validated with the same create struct and stored with the same repository as
the API's. Loading goes on after a record is refused, so that one pass reports every problem,
each with the JSON pointer of its record (and field): the caller then rolls the whole document
back. A record whose parent was refused is not attempted (its problem is the parent's)."""

import re
from typing import Any

import msgspec
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from service.adverse_events.schemas import AdverseEventCreate
from service.adverse_events.service import AdverseEventRepository
from service.agents.schemas import AgentCreate
from service.agents.service import AgentRepository, agent_ids_by_name
from service.arms.schemas import ArmCreate
from service.arms.service import ArmRepository
from service.errors import DomainError
from service.outcomes.schemas import OutcomeCreate
from service.outcomes.service import OutcomeRepository
from service.patients.schemas import PatientCreate
from service.patients.service import PatientRepository
from service.reported_results.schemas import ReportedResultCreate
from service.reported_results.service import ReportedResultRepository
from service.studies.schemas import StudyCreate
from service.studies.service import StudyRepository
from service.treatments.schemas import TreatmentCreate
from service.treatments.service import TreatmentRepository

KINDS = ("arms", "patients", "treatments", "adverse_events", "outcomes", "reported_results")
_MSGSPEC_PATH = re.compile(r" - at `\$(.*)`$")


class Problem(msgspec.Struct, frozen=True):
    pointer: str
    message: str


class _DatabaseRefused(Exception):
    """The database refused a write: the transaction cannot go on, loading stops here."""


def _pointer_of(path: str) -> str:
    """msgspec's `$.a[0].b` as a JSON pointer suffix `/a/0/b`."""
    return "".join(f"/{part}" for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path) for part in part if part)


class StudyDocumentLoader:
    """Stores one document's records in `session`; `problems` lists what was refused."""

    def __init__(
        self, session: AsyncSession, *, source_document: str | None, require_provenance: bool
    ) -> None:
        self.session = session
        self.source_document = source_document
        self.require_provenance = require_provenance
        self.problems: list[Problem] = []
        self.counts = dict.fromkeys(KINDS, 0)
        self.agents: dict[str, Any] = {}
        self.arms: dict[str, Any] = {}
        self.treatments: dict[str, Any] = {}
        # Keys of refused records: what refers to them is skipped, its problem is the parent's.
        self.refused: set[tuple[str, Any]] = set()

    def refuse(self, pointer: str, message: str) -> None:
        self.problems.append(Problem(pointer, message))

    def _struct(self, record: dict[str, Any], type_: Any, pointer: str) -> Any:
        if self.require_provenance and not record.get("provenance"):
            self.refuse(f"{pointer}/provenance", "every curated record needs provenance")
            return None
        record = dict(record)
        if self.source_document and record.get("provenance"):
            record["provenance"] = [
                {"source_document": self.source_document, **entry} if isinstance(entry, dict) else entry
                for entry in record["provenance"]
            ]
        try:
            return msgspec.convert(record, type_)
        except msgspec.ValidationError as exc:
            message = str(exc)
            at = _MSGSPEC_PATH.search(message)
            self.refuse(pointer + (_pointer_of(at.group(1)) if at else ""), _MSGSPEC_PATH.sub("", message))
            return None

    async def create(self, repository: Any, record: dict[str, Any], type_: Any, pointer: str) -> Any:
        """The stored record (as the API reads it), or None when it was refused."""
        data = self._struct(record, type_, pointer)
        if data is None:
            return None
        try:
            return await repository.create(self.session, data)
        except DomainError as exc:
            field = f"/{exc.field.replace('.', '/')}" if exc.field else ""
            self.refuse(pointer + field, exc.detail)
            return None
        except DBAPIError as exc:
            self.refuse(pointer, f"the database refused the record ({type(exc.orig).__name__})")
            raise _DatabaseRefused from exc

    def local(self, table: dict[str, Any], key: Any, kind: str, pointer: str) -> Any:
        if key in table:
            return table[key]
        if (kind, key) not in self.refused:
            self.refuse(pointer, f"no {kind} with key {key!r} in this document")
        return None

    def agent_id(self, name: Any, pointer: str) -> Any:
        found = self.agents.get(str(name).lower())
        if found is None:
            self.refuse(pointer, f"agent {name!r} is neither stored nor listed in the document's agents")
        return found

    async def load_agents(self, records: list[dict[str, Any]]) -> int:
        """Agents the document lists and the database lacks (matched by name) are created."""
        self.agents = await agent_ids_by_name(self.session)
        added = 0
        for i, record in enumerate(records):
            name = str(record.get("name", "")).lower()
            if name and name in self.agents:
                continue
            try:
                created = await self.create(AgentRepository(), record, AgentCreate, f"/agents/{i}")
            except _DatabaseRefused:
                return added
            if created is not None:
                self.agents[name] = created.id
                added += 1
        return added

    async def load(self, data: dict[str, Any]) -> Any:
        """Store the study and everything under it; the study as read, or None if refused. After
        a refusal by the database itself loading stops (the transaction is lost)."""
        try:
            return await self._load(data)
        except _DatabaseRefused:
            return None

    async def _load(self, data: dict[str, Any]) -> Any:
        if not self.agents:
            self.agents = await agent_ids_by_name(self.session)
        study_record = {**data.get("study", {}), "source_document": self.source_document}
        study = await self.create(StudyRepository(), study_record, StudyCreate, "/study")
        if study is None:
            return None
        for i, arm in enumerate(data.get("arms", [])):
            await self._arm(study.id, dict(arm), f"/arms/{i}")
        for i, patient in enumerate(data.get("patients", [])):
            await self._patient(study.id, dict(patient), f"/patients/{i}")
        for i, result in enumerate(data.get("reported_results", [])):
            await self._reported_result(study.id, dict(result), f"/reported_results/{i}")
        return study

    async def _arm(self, study_id: Any, arm: dict[str, Any], pointer: str) -> None:
        key = arm.pop("key", None)
        names = arm.pop("agents", [])
        arm["agent_ids"] = [self.agent_id(name, f"{pointer}/agents/{j}") for j, name in enumerate(names)]
        created = None
        if None not in arm["agent_ids"]:
            created = await self.create(ArmRepository(), {**arm, "study_id": study_id}, ArmCreate, pointer)
        if created is None:
            self.refused.add(("arm", key))
            return
        self.arms[key] = created.id
        self.counts["arms"] += 1

    async def _patient(self, study_id: Any, patient: dict[str, Any], pointer: str) -> None:
        treatments = patient.pop("treatments", [])
        adverse_events = patient.pop("adverse_events", [])
        outcomes = patient.pop("outcomes", [])
        if "arm" in patient:
            patient["arm_id"] = self.local(self.arms, patient.pop("arm"), "arm", f"{pointer}/arm")
            if patient["arm_id"] is None:
                return
        created = await self.create(
            PatientRepository(), {**patient, "study_id": study_id}, PatientCreate, pointer
        )
        if created is None:
            return
        self.counts["patients"] += 1
        subject = patient.get("subject_code")
        for j, treatment in enumerate(treatments):
            await self._treatment(created.id, subject, dict(treatment), f"{pointer}/treatments/{j}")
        for kind, records, type_, repository in (
            ("adverse_events", adverse_events, AdverseEventCreate, AdverseEventRepository()),
            ("outcomes", outcomes, OutcomeCreate, OutcomeRepository()),
        ):
            for j, record in enumerate(records):
                where = f"{pointer}/{kind}/{j}"
                record = dict(record)
                if "treatment" in record:
                    key = f"{subject}/{record.pop('treatment')}"
                    record["treatment_id"] = self.local(
                        self.treatments, key, "treatment", f"{where}/treatment"
                    )
                    if record["treatment_id"] is None:
                        continue
                if await self.create(repository, {**record, "patient_id": created.id}, type_, where):
                    self.counts[kind] += 1

    async def _treatment(
        self, patient_id: Any, subject: Any, treatment: dict[str, Any], pointer: str
    ) -> None:
        key = f"{subject}/{treatment.pop('key', None)}"
        components = []
        for k, component in enumerate(treatment.get("components", [])):
            agent = self.agent_id(component.get("agent"), f"{pointer}/components/{k}/agent")
            components.append({**{f: v for f, v in component.items() if f != "agent"}, "agent_id": agent})
        treatment["components"] = components
        created = None
        if all(c["agent_id"] is not None for c in components):
            created = await self.create(
                TreatmentRepository(), {**treatment, "patient_id": patient_id}, TreatmentCreate, pointer
            )
        if created is None:
            self.refused.add(("treatment", key))
            return
        self.treatments[key] = created.id
        self.counts["treatments"] += 1

    async def _reported_result(self, study_id: Any, result: dict[str, Any], pointer: str) -> None:
        if "arm" in result:
            result["arm_id"] = self.local(self.arms, result.pop("arm"), "arm", f"{pointer}/arm")
            if result["arm_id"] is None:
                return
        definition = result.get("definition")
        if isinstance(definition, dict) and "arms" in definition:
            # Comparisons name their arms by this document's keys.
            definition = dict(definition)
            keys = definition.pop("arms")
            ids = [
                self.local(self.arms, key, "arm", f"{pointer}/definition/arms/{j}")
                for j, key in enumerate(keys)
            ]
            if None in ids:
                return
            result["definition"] = {**definition, "arm_ids": ids}
        created = await self.create(
            ReportedResultRepository(), {**result, "study_id": study_id}, ReportedResultCreate, pointer
        )
        if created is not None:
            self.counts["reported_results"] += 1

    def summary(self) -> str:
        return ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in self.counts.items())
