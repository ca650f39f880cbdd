"""One study as FHIR R4 resources: a Bundle of type `collection` (references `urn:uuid:` to entries'
fullUrls, so every reference resolves inside the bundle) or NDJSON, one resource per line, as bulk
data `$export` writes it (references `Type/id`).

Mapping:
- Study → ResearchStudy (registry ids as identifiers, phases, status, conditions, arms, period
  from partial dates) and Group (the enrolled population, with its size);
- Patient → Patient (de-identified: gender only; no name, birth date or record number) and
  ResearchSubject (study, individual, assigned arm);
- AdverseEvent → AdverseEvent (term as text with its MedDRA code when curated; the CTCAE/ASTCT
  grade in the ae-grade extension of the HL7 Adverse Event Clinical Research R4 backport IG,
  codes from its adverse-event-clinical-research-grades code system; seriousness; outcome);
- Outcome → Observation (response category, MRD status/method/level, events such as relapse or
  death, other observations; the study day in a component, since FHIR times are dates);
- Treatment → Procedure (phase and regimen; its agents as `usedCode`, with ATC codes where known):
  MedicationAdministration needs an administration time, which the sources give as study days;
- provenance entries → one Provenance per curated resource (the quoted source as its entity).

Records without a date keep their study-day timing in components or extensions; nothing is
invented to fill FHIR's date fields."""

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import func, select

from service.access.scope import current_scope
from service.db import models
from service.db.models import as_utc
from service.exchange.export_json import (
    StudyTree,
    consistent_snapshot,
    patient_batches,
    read_tree,
    without_empty,
)

REGISTRY = "https://github.com/leukemia-outcomes-registry"
AE_GRADE = "http://hl7.org/fhir/uv/ae-research-backport-ig/StructureDefinition/ae-grade"
AE_GRADES = "http://terminology.hl7.org/CodeSystem/adverse-event-clinical-research-grades"
SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
MEDDRA = "http://terminology.hl7.org/CodeSystem/mdr"
ATC = "http://www.whocc.no/atc"
NCT = "https://clinicaltrials.gov"
STUDY_DAY = f"{REGISTRY}/fhir/study-day"
PHASES = {
    "NA": "n-a",
    "EARLY_PHASE1": "early-phase-1",
    "PHASE1": "phase-1",
    "PHASE2": "phase-2",
    "PHASE3": "phase-3",
    "PHASE4": "phase-4",
}
STATUS = {
    "NOT_YET_RECRUITING": "approved",
    "RECRUITING": "active",
    "ENROLLING_BY_INVITATION": "active",
    "ACTIVE_NOT_RECRUITING": "closed-to-accrual",
    "SUSPENDED": "temporarily-closed-to-accrual",
    "TERMINATED": "administratively-completed",
    "COMPLETED": "completed",
    "WITHDRAWN": "withdrawn",
}
AE_OUTCOME = {"resolved": "resolved", "resolving": "recovering", "ongoing": "ongoing", "fatal": "fatal"}
SEX = {"female": "female", "male": "male", "unknown": "unknown"}


class _Refs:
    """References as a bundle writes them (`urn:uuid:…`) or as NDJSON does (`Type/id`)."""

    def __init__(self, bundle: bool) -> None:
        self.bundle = bundle

    def __call__(self, kind: str, id: Any) -> dict[str, str]:
        return {"reference": f"urn:uuid:{id}" if self.bundle else f"{kind}/{id}"}


def _text(value: str) -> dict[str, str]:
    return {"text": value}


def _study_day_component(day: int | None) -> list[dict[str, Any]]:
    if day is None:
        return []
    return [
        {
            "code": {"coding": [{"system": STUDY_DAY, "code": "study-day"}], "text": "study day"},
            "valueInteger": day,
        }
    ]


def _study(tree: StudyTree, ref: _Refs, patients: int) -> Iterator[dict[str, Any]]:
    study = tree.study
    group_id = UUID(int=study.id.int ^ 1)  # the population's id, derived: stable across exports
    resource: dict[str, Any] = {
        "resourceType": "ResearchStudy",
        "id": str(study.id),
        "identifier": [
            {"system": NCT if rid.startswith("NCT") else f"{REGISTRY}/registry-id", "value": rid}
            for rid in study.registry_ids
        ],
        "title": study.title,
        "status": STATUS.get(study.overall_status or "", "completed"),
        "phase": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/research-study-phase", "code": PHASES[p]}
                for p in study.phases[:1]
            ]
        }
        if study.phases
        else None,
        "condition": [_text(c) for c in study.conditions],
        "description": study.summary,
        "enrollment": [ref("Group", group_id)],
        "arm": [{"name": arm.label, "description": arm.description} for arm in tree.arms],
    }
    period = {k: v for k, v in (("start", study.start_date), ("end", study.end_date)) if v}
    if period:
        resource["period"] = period
    yield resource
    yield {
        "resourceType": "Group",
        "id": str(group_id),
        "type": "person",
        "actual": True,
        "name": f"Patients of {study.title}"[:500],
        "quantity": patients,
    }


def _patient(
    tree: StudyTree, ref: _Refs, record: dict[str, Any], id: UUID
) -> tuple[dict[str, Any], dict[str, Any]]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": str(id)}
    if record.get("sex"):
        patient["gender"] = SEX[record["sex"]]
    subject: dict[str, Any] = {
        "resourceType": "ResearchSubject",
        "id": str(UUID(int=id.int ^ 1)),
        "status": "off-study"
        if tree.study.overall_status in (None, "COMPLETED", "TERMINATED")
        else "on-study",
        "study": ref("ResearchStudy", tree.study.id),
        "individual": ref("Patient", id),
    }
    if record.get("arm"):
        subject["assignedArm"] = next(a.label for a in tree.arms if tree.arm_keys[a.id] == record["arm"])
    return patient, subject


def _adverse_event(ref: _Refs, patient: UUID, event: dict[str, Any], id: UUID) -> dict[str, Any]:
    code: dict[str, Any] = {"text": event["term"]}
    if event.get("meddra_code"):
        code["coding"] = [{"system": MEDDRA, "code": event["meddra_code"], "display": event["term"]}]
    resource: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": str(id),
        "actuality": "actual",
        "event": code,
        "subject": ref("Patient", patient),
    }
    if event.get("grade") is not None:
        resource["extension"] = [
            {
                "url": AE_GRADE,
                "valueCodeableConcept": {
                    "coding": [{"system": AE_GRADES, "code": str(event["grade"])}],
                    "text": f"{event.get('grading_system') or 'grade'} {event['grade']}",
                },
            }
        ]
    if event.get("serious") is not None:
        seriousness = "serious" if event["serious"] else "non-serious"
        resource["seriousness"] = {"coding": [{"system": SERIOUSNESS, "code": seriousness}]}
    if event.get("outcome"):
        resource["outcome"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/adverse-event-outcome",
                    "code": AE_OUTCOME[event["outcome"]],
                }
            ]
        }
    return resource


def _observation(ref: _Refs, patient: UUID, outcome: dict[str, Any], id: UUID) -> dict[str, Any]:
    kind = outcome["kind"]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(id),
        "status": "final",
        "subject": ref("Patient", patient),
        "component": _study_day_component(outcome.get("study_day")),
    }
    if outcome.get("date"):
        resource["effectiveDateTime"] = outcome["date"]
    if kind == "response":
        resource["code"] = _text("Response assessment")
        if outcome.get("category"):
            resource["valueCodeableConcept"] = _text(outcome["category"])
        elif outcome.get("possible_categories"):
            resource["valueCodeableConcept"] = _text(" or ".join(outcome["possible_categories"]))
        if outcome.get("mrd_status"):
            resource["component"].append(
                {
                    "code": _text(
                        f"Minimal residual disease ({outcome.get('mrd_method') or 'method not stated'})"
                    ),
                    "valueCodeableConcept": _text(outcome["mrd_status"]),
                }
            )
        if outcome.get("mrd_level") is not None:
            resource["component"].append(
                {
                    "code": _text("MRD level"),
                    "valueQuantity": {"value": outcome["mrd_level"], "unit": "fraction"},
                }
            )
    elif kind == "event":
        resource["code"] = _text(f"Event: {outcome['event_type']}")
        resource["valueCodeableConcept"] = _text(outcome["event_type"])
    else:
        resource["code"] = _text(outcome.get("name") or "Observation")
        if outcome.get("value") is not None:
            resource["valueQuantity"] = {
                "value": outcome["value"],
                **({"unit": outcome["unit"]} if outcome.get("unit") else {}),
            }
    if not resource["component"]:
        del resource["component"]
    return resource


def _procedure(
    tree: StudyTree, ref: _Refs, patient: UUID, treatment: dict[str, Any], id: UUID
) -> dict[str, Any]:
    atc = {agent.name: agent.atc_code for agent in tree.agents}
    used = []
    for component in treatment.get("components", []):
        concept: dict[str, Any] = {"text": component["agent"]}
        if atc.get(component["agent"]):
            concept["coding"] = [
                {"system": ATC, "code": atc[component["agent"]], "display": component["agent"]}
            ]
        used.append(concept)
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": str(id),
        "status": "completed",
        "code": _text(
            " ".join(p for p in (treatment.get("regimen"), treatment["phase"].replace("_", " ")) if p)
        ),
        "subject": ref("Patient", patient),
        "usedCode": used,
    }
    if treatment.get("start_date"):
        resource["performedDateTime"] = treatment["start_date"]
    return resource


def _provenance(
    ref: _Refs, kind: str, id: Any, entries: list[dict[str, Any]], recorded: str
) -> dict[str, Any] | None:
    if not entries:
        return None
    return {
        "resourceType": "Provenance",
        "id": str(UUID(int=UUID(str(id)).int ^ 2)),
        "target": [ref(kind, id)],
        "recorded": recorded,
        "agent": [{"who": {"display": "leukemia outcomes registry curation"}}],
        "entity": [
            {
                "role": "source",
                "what": {
                    "display": f"{e.get('source_document', '?')}, {e.get('location', '?')}: \u201c{e.get('quote', '')}\u201d"[
                        :1000
                    ]
                },
            }
            for e in entries
        ],
    }


def _with_provenance(
    ref: _Refs, resource: dict[str, Any], entries: list[dict[str, Any]], recorded: str
) -> Iterator[dict[str, Any]]:
    yield resource
    provenance = _provenance(ref, resource["resourceType"], resource["id"], entries, recorded)
    if provenance is not None:
        yield provenance


async def resources(
    open_session: Callable[[], Any], study_id: UUID, ref: _Refs
) -> AsyncIterator[dict[str, Any]]:
    """Every resource of the study, with a Provenance after each curated one."""
    async with open_session() as session, session.begin():
        await consistent_snapshot(session)
        tree = await read_tree(session, study_id)
        if tree is None:
            return
        recorded = as_utc(tree.study.created_at).isoformat()
        patients = await session.scalar(
            select(func.count()).select_from(models.Patient).where(current_scope().study_patients(study_id))
        )
        for resource in _study(tree, ref, int(patients or 0)):
            entries = tree.study.provenance if resource["resourceType"] == "ResearchStudy" else []
            for item in _with_provenance(ref, resource, entries, recorded):
                yield item
        async for batch in patient_batches(session, tree, with_ids=True):
            for record in batch:
                for item in _patient_resources(tree, ref, record, recorded):
                    yield item


def _patient_resources(
    tree: StudyTree, ref: _Refs, record: dict[str, Any], recorded: str
) -> Iterator[dict[str, Any]]:
    pid = UUID(record["id"])
    patient, subject = _patient(tree, ref, record, pid)
    yield from _with_provenance(ref, patient, record.get("provenance", []), recorded)
    yield subject
    for treatment in record["treatments"]:
        procedure = _procedure(tree, ref, pid, treatment, treatment["id"])
        yield from _with_provenance(ref, procedure, treatment.get("provenance", []), recorded)
    for event in record["adverse_events"]:
        adverse_event = _adverse_event(ref, pid, event, event["id"])
        yield from _with_provenance(ref, adverse_event, event.get("provenance", []), recorded)
    for outcome in record["outcomes"]:
        observation = _observation(ref, pid, outcome, outcome["id"])
        yield from _with_provenance(ref, observation, outcome.get("provenance", []), recorded)


async def stream(open_session: Callable[[], Any], study_id: UUID, *, bundle: bool) -> AsyncIterator[bytes]:
    encode = msgspec.json.Encoder().encode
    ref = _Refs(bundle)
    if not bundle:
        async for resource in resources(open_session, study_id, ref):
            yield encode(without_empty(resource)) + b"\n"
        return
    yield b'{"resourceType":"Bundle","type":"collection","entry":['
    first = True
    async for resource in resources(open_session, study_id, ref):
        entry = encode({"fullUrl": f"urn:uuid:{resource['id']}", "resource": without_empty(resource)})
        yield entry if first else b"," + entry
        first = False
    yield b"]}"
