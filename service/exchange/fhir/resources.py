"""One study as coded FHIR R4 resources (they validate as R4B too): a Bundle of type `collection`
(references `urn:uuid:` to entries' fullUrls, so every reference resolves inside the bundle) or
NDJSON, one resource per line, as bulk data `$export` writes it (references `Type/id`).

Mapping (codes and profiles in service.exchange.fhir.terminology):
- Study → ResearchStudy (registry ids as identifiers, phases, status, conditions, arms, sites as
  Locations, period from partial dates) and Group (the enrolled population, with its size);
- Patient → Patient as mCODE CancerPatient (de-identified: a registry identifier, the name masked
  with a data-absent reason, gender, deceased when a death is recorded; no birth date or record
  number), ResearchSubject (study, individual, assigned arm) and its leukaemia as an mCODE
  PrimaryCancerCondition (ICD-10 code, ICD-O-3 morphology in the histology extension);
- AdverseEvent → AdverseEvent (MedDRA coding when curated; the CTCAE/ASTCT grade in the AE research
  backport IG's severity-or-grade extension; seriousness; outcome in the IG's ICH codes); it names
  the IG's AdverseEvent-clinical-research profile when it satisfies it (seriousness and outcome
  known; a serious event needs a seriousness criterion, which the registry knows only for deaths);
- response → mCODE CancerDiseaseStatus (LOINC 97509-4, the SNOMED CT trend with the registry's
  response category beside it), and its MRD as its own Observation (LOINC 67128-9 by flow, US Core
  laboratory result; qPCR/NGS by text, SNOMED CT result); relapse and progression events → a
  CancerDiseaseStatus "worsened"; other events and observations → Observation with the registry's code;
- Treatment → Procedure (phase and regimen; its agents as `usedCode`, with ATC codes where known):
  MedicationAdministration needs an administration time, which the sources give as study days;
- provenance entries → one Provenance per curated resource (the quoted source as its entity).

Records without a date carry `_effectiveDateTime` with a data-absent reason and keep their study
day in an extension under the service's own canonical URL; nothing is invented to fill FHIR's date
fields. Every resource names in `meta.profile` the profile it satisfies (the core definition where
no published one applies)."""

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
from service.exchange.fhir.terminology import (
    AE_GRADE,
    AE_GRADE_DISPLAY,
    AE_GRADES,
    AE_OUTCOME,
    AE_SERIOUSNESS_CRITERIA,
    AE_STATUS,
    ATC,
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    DATA_ABSENT,
    DIAGNOSIS,
    DISEASE_STATUS_CODE,
    EVENT_TREND,
    EVENT_TYPE,
    HISTOLOGY,
    ICD10,
    ICD10_FOR,
    ICDO3,
    ICDO3_FOR,
    ICH,
    ICH_RESULTS_IN_DEATH,
    MEDDRA,
    MRD_FLOW,
    MRD_STATUS,
    MRD_VALUE,
    NCT,
    OBSERVATION_CATEGORY,
    REGISTRY,
    RESPONSE_CATEGORY,
    RESPONSE_TREND,
    SERIOUSNESS,
    STUDY_DAY,
    TREND,
    Profile,
    coding,
    concept,
)

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
SEX = {"female": "female", "male": "male", "unknown": "unknown"}
# Condition.clinicalStatus as the patient entered the study (the registry keeps no later status on
# the condition itself: responses and relapses are their own resources).
CLINICAL_STATUS = {"cr_mrd_positive": "remission", "relapsed": "relapse", "relapsed_post_hsct": "relapse"}
UCUM = "http://unitsofmeasure.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
MRD_INTERPRETATION = {"negative": "NEG", "positive": "POS"}


def _derived(id: Any, salt: int) -> str:
    """A resource's id derived from its record's: stable across exports."""
    return str(UUID(int=UUID(str(id)).int ^ salt))


class _Refs:
    """References as a bundle writes them (`urn:uuid:…`) or as NDJSON does (`Type/id`)."""

    def __init__(self, bundle: bool) -> None:
        self.bundle = bundle

    def __call__(self, kind: str, id: Any) -> dict[str, str]:
        return {"reference": f"urn:uuid:{id}" if self.bundle else f"{kind}/{id}"}


def _meta(profile: str) -> dict[str, Any]:
    return {"profile": [profile]}


def _text(value: str) -> dict[str, str]:
    return {"text": value}


def _study_day(day: int | None) -> list[dict[str, Any]]:
    return [] if day is None else [{"url": STUDY_DAY, "valueInteger": day}]


def _effective(resource: dict[str, Any], date: str | None) -> None:
    """`effectiveDateTime` at the source's precision, or its absence said with a reason."""
    if date:
        resource["effectiveDateTime"] = date
    else:
        resource["_effectiveDateTime"] = {"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]}


def _study(tree: StudyTree, ref: _Refs, patients: int) -> Iterator[dict[str, Any]]:
    study = tree.study
    group_id = _derived(study.id, 1)  # the population's id
    resource: dict[str, Any] = {
        "resourceType": "ResearchStudy",
        "id": str(study.id),
        "meta": _meta(Profile.core("ResearchStudy")),
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
        "site": [ref("Location", site.id) for site in tree.sites],
        "arm": [{"name": arm.label, "description": arm.description} for arm in tree.arms],
    }
    period = {k: v for k, v in (("start", study.start_date), ("end", study.end_date)) if v}
    if period:
        resource["period"] = period
    yield resource
    yield {
        "resourceType": "Group",
        "id": group_id,
        "meta": _meta(Profile.core("Group")),
        "type": "person",
        "actual": True,
        "name": f"Patients of {study.title}"[:500],
        "quantity": patients,
    }
    for site in tree.sites:
        address = {k: v for k, v in (("city", site.city), ("country", site.country)) if v}
        yield {
            "resourceType": "Location",
            "id": str(site.id),
            "meta": _meta(Profile.core("Location")),
            "identifier": [{"system": f"{REGISTRY}/site-code", "value": site.code}],
            "name": site.institution,
            **({"address": address} if address else {}),
        }


def _died(record: dict[str, Any]) -> bool:
    return any(o["kind"] == "event" and o.get("event_type") == "death" for o in record["outcomes"])


def _patient(
    tree: StudyTree, ref: _Refs, record: dict[str, Any], id: UUID
) -> tuple[dict[str, Any], dict[str, Any]]:
    # US Core (so mCODE CancerPatient) asks for an identifier, a name and a gender: the identifier
    # is the registry's own, the name is masked (a data-absent reason, as US Core us-core-6 allows).
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(id),
        "meta": _meta(Profile.CANCER_PATIENT),
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{id}"}],
        "name": [{"extension": [{"url": DATA_ABSENT, "valueCode": "masked"}]}],
        "gender": SEX[record.get("sex") or "unknown"],
    }
    if _died(record):
        patient["deceasedBoolean"] = True
    subject: dict[str, Any] = {
        "resourceType": "ResearchSubject",
        "id": _derived(id, 1),
        "meta": _meta(Profile.core("ResearchSubject")),
        "status": "off-study"
        if tree.study.overall_status in (None, "COMPLETED", "TERMINATED")
        else "on-study",
        "study": ref("ResearchStudy", tree.study.id),
        "individual": ref("Patient", id),
    }
    if record.get("arm"):
        subject["assignedArm"] = next(a.label for a in tree.arms if tree.arm_keys[a.id] == record["arm"])
    return patient, subject


def _condition(ref: _Refs, record: dict[str, Any], patient: UUID) -> dict[str, Any]:
    """The patient's leukaemia: ICD-10 as stored (else the diagnosis category's single code), the
    ICD-O-3 morphology in mCODE's histology extension."""
    diagnosis = record["diagnosis"]
    text = " — ".join(t for t in (diagnosis, record.get("diagnosis_subtype")) if t)
    codings = [coding(DIAGNOSIS, diagnosis)]
    if record.get("icd10_code"):
        codings.insert(0, coding(ICD10, record["icd10_code"]))
    elif diagnosis in ICD10_FOR:
        codings.insert(0, coding(ICD10, *ICD10_FOR[diagnosis]))
    coded = codings[0]["system"] == ICD10
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": _derived(patient, 4),
        "meta": _meta(Profile.PRIMARY_CANCER_CONDITION if coded else Profile.core("Condition")),
        "clinicalStatus": concept(
            "status at study entry",
            coding(CONDITION_CLINICAL, CLINICAL_STATUS.get(record.get("disease_status") or "", "active")),
        ),
        "category": [concept("Problem List Item", coding(CONDITION_CATEGORY, "problem-list-item"))],
        "code": concept(text, *codings),
        "subject": ref("Patient", patient),
    }
    morphology = (
        (record["icdo3_morphology"], None) if record.get("icdo3_morphology") else ICDO3_FOR.get(diagnosis)
    )
    if morphology:
        resource["extension"] = [
            {"url": HISTOLOGY, "valueCodeableConcept": {"coding": [coding(ICDO3, *morphology)]}}
        ]
    return resource


def _adverse_event(ref: _Refs, study: UUID, patient: UUID, event: dict[str, Any], id: UUID) -> dict[str, Any]:
    code: dict[str, Any] = {"text": event["term"]}
    if event.get("meddra_code"):
        code["coding"] = [coding(MEDDRA, event["meddra_code"], event["term"])]
    extension = _study_day(event.get("onset_day"))
    if event.get("grade") is not None:
        grade = int(event["grade"])
        extension.append(
            {
                "url": AE_GRADE,
                "valueCodeableConcept": concept(
                    f"{event.get('grading_system') or 'grade'} {grade}",
                    coding(AE_GRADES, str(grade), AE_GRADE_DISPLAY[grade]),
                ),
            }
        )
    serious, outcome = event.get("serious"), event.get("outcome")
    if serious and outcome == "fatal":
        extension.append(
            {
                "url": AE_SERIOUSNESS_CRITERIA,
                "extension": [
                    {"url": "criterionCode", "valueCodeableConcept": {"coding": [coding(ICH, ICH_RESULTS_IN_DEATH, "Results In Death")]}},
                    {"url": "criterionPresent", "valueBoolean": True},
                ],
            }
        )  # fmt: skip
    # The research profile needs seriousness and outcome, and a criterion for a serious event.
    profiled = serious is not None and outcome is not None and (not serious or outcome == "fatal")
    resource: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": str(id),
        "meta": _meta(Profile.AE_CLINICAL_RESEARCH if profiled else Profile.core("AdverseEvent")),
        "modifierExtension": [{"url": AE_STATUS, "valueCode": "completed"}],
        "extension": extension,
        "actuality": "actual",
        "event": code,
        "subject": ref("Patient", patient),
        "study": [ref("ResearchStudy", study)],
    }
    if serious is not None:
        resource["seriousness"] = {"coding": [coding(SERIOUSNESS, "serious" if serious else "non-serious")]}
    if outcome:
        resource["outcome"] = {"coding": [coding(ICH, AE_OUTCOME[outcome])]}
    return resource


def _disease_status(
    ref: _Refs, patient: UUID, outcome: dict[str, Any], id: Any, value: dict[str, Any] | None
) -> dict[str, Any]:
    """An mCODE CancerDiseaseStatus: the clinician's judgement of the leukaemia's trend."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(id),
        "meta": _meta(Profile.CANCER_DISEASE_STATUS),
        "extension": _study_day(outcome.get("study_day")),
        "status": "final",
        "code": {"coding": [DISEASE_STATUS_CODE], "text": "Response assessment"},
        "subject": ref("Patient", patient),
        "focus": [ref("Condition", _derived(patient, 4))],
    }
    _effective(resource, outcome.get("date"))
    if value is not None:
        resource["valueCodeableConcept"] = value
    return resource


def _response_value(outcome: dict[str, Any]) -> dict[str, Any] | None:
    categories = [outcome["category"]] if outcome.get("category") else outcome.get("possible_categories", [])
    if not categories:
        return None
    text = outcome.get("category_text") or " or ".join(categories)
    # One trend only when every possible category means the same one (CR or CRi: full remission).
    trends = {RESPONSE_TREND[c] for c in categories}
    codings = [coding(*TREND[trends.pop()])] if len(trends) == 1 else []
    if len(categories) == 1:
        codings.append(coding(RESPONSE_CATEGORY, categories[0]))
    return concept(text, *codings)


def _mrd(ref: _Refs, patient: UUID, outcome: dict[str, Any]) -> dict[str, Any] | None:
    status, level = outcome.get("mrd_status"), outcome.get("mrd_level")
    if status is None and level is None:
        return None
    method = outcome.get("mrd_method")
    label = " ".join(
        t
        for t in ("Minimal residual disease", f"by {method}" if method else None, outcome.get("mrd_target"))
        if t
    )
    flow = method == "flow"
    date = outcome.get("date")
    # US Core's laboratory result needs a LOINC code and a date to the day, when dated.
    lab = flow and (date is None or len(date) == 10)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _derived(outcome["id"], 3),
        "meta": _meta(Profile.US_CORE_LAB if lab else Profile.core("Observation")),
        "extension": _study_day(outcome.get("study_day")),
        "status": "final",
        "category": [concept("Laboratory", coding(OBSERVATION_CATEGORY, "laboratory"))],
        "code": concept(label, MRD_FLOW) if flow else concept(label),
        "subject": ref("Patient", patient),
    }
    if date:
        resource["effectiveDateTime"] = date
    if level is not None:
        # Stored as a fraction; LOINC 67128-9 is a number fraction in %.
        resource["valueQuantity"] = {
            "value": round(level * 100, 12),
            "unit": "%",
            "system": UCUM,
            "code": "%",
        }
        if status in MRD_INTERPRETATION:
            resource["interpretation"] = [{"coding": [coding(INTERPRETATION, MRD_INTERPRETATION[status])]}]
    elif status in MRD_VALUE:
        resource["valueCodeableConcept"] = concept(
            status, coding(*MRD_VALUE[status]), coding(MRD_STATUS, status)
        )
    else:  # not done
        resource["dataAbsentReason"] = concept(
            "not done", coding("http://terminology.hl7.org/CodeSystem/data-absent-reason", "not-performed")
        )
    return resource


def _observations(ref: _Refs, patient: UUID, outcome: dict[str, Any]) -> Iterator[dict[str, Any]]:
    kind, id = outcome["kind"], outcome["id"]
    if kind == "response":
        yield _disease_status(ref, patient, outcome, id, _response_value(outcome))
        mrd = _mrd(ref, patient, outcome)
        if mrd is not None:
            yield mrd
        return
    if kind == "event" and outcome["event_type"] in EVENT_TREND:
        event = outcome["event_type"]
        value = concept(event, coding(*TREND[EVENT_TREND[event]]), coding(EVENT_TYPE, event))
        yield _disease_status(ref, patient, outcome, id, value)
        return
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(id),
        "meta": _meta(Profile.core("Observation")),
        "extension": _study_day(outcome.get("study_day")),
        "status": "final",
        "subject": ref("Patient", patient),
    }
    _effective(resource, outcome.get("date"))
    if kind == "event":
        event = outcome["event_type"]
        resource["code"] = concept(f"Event: {event}", coding(EVENT_TYPE, event))
        resource["valueCodeableConcept"] = concept(outcome.get("cause") or event)
    else:
        resource["code"] = _text(outcome.get("name") or "Observation")
        if outcome.get("value") is not None:
            resource["valueQuantity"] = {
                "value": outcome["value"],
                **({"unit": outcome["unit"]} if outcome.get("unit") else {}),
            }
    yield resource


def _procedure(
    tree: StudyTree, ref: _Refs, patient: UUID, treatment: dict[str, Any], id: UUID
) -> dict[str, Any]:
    atc = {agent.name: agent.atc_code for agent in tree.agents}
    used = []
    for component in treatment.get("components", []):
        name = component["agent"]
        used.append(concept(name, coding(ATC, atc[name], name)) if atc.get(name) else concept(name))
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": str(id),
        "meta": _meta(Profile.core("Procedure")),
        "extension": _study_day(treatment.get("start_day")),
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
        "id": _derived(id, 2),
        "meta": _meta(Profile.core("Provenance")),
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
    yield _condition(ref, record, pid)
    for treatment in record["treatments"]:
        procedure = _procedure(tree, ref, pid, treatment, treatment["id"])
        yield from _with_provenance(ref, procedure, treatment.get("provenance", []), recorded)
    for event in record["adverse_events"]:
        adverse_event = _adverse_event(ref, tree.study.id, pid, event, event["id"])
        yield from _with_provenance(ref, adverse_event, event.get("provenance", []), recorded)
    for outcome in record["outcomes"]:
        observations = list(_observations(ref, pid, outcome))
        yield from _with_provenance(ref, observations[0], outcome.get("provenance", []), recorded)
        yield from observations[1:]


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
