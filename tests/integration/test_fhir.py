"""The coded FHIR export: every resource of every seed study validates with fhir.resources (R4B
models; the elements written are the same in R4), its references resolve, and it names in
`meta.profile` a published profile whose required elements it carries — checked here by rules
written from the profiles' definitions (mCODE STU4, US Core, the AE research backport IG), not
from the exporter. The registry's codes reach the export: MedDRA on adverse events, ICD-10 and
ICD-O-3 on the leukaemia, LOINC and SNOMED CT on responses and MRD, dates where the source has one."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from litestar.testing import TestClient

from tests.integration.test_exchange import _export
from tests.integration.test_seed import get_all

API = "/api/v1"
LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"
ICD10, ICDO3 = "http://hl7.org/fhir/sid/icd-10", "http://terminology.hl7.org/CodeSystem/icd-o-3"
MEDDRA = "http://terminology.hl7.org/CodeSystem/mdr"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
AE_IG = "http://hl7.org/fhir/uv/ae-research-backport-ig/"
STUDY_DAY = "https://github.com/leukemia-outcomes-registry/fhir/StructureDefinition/study-day"
# mCODE ConditionStatusTrendMaxVS
TREND_MAX = {"268910001", "359746009", "271299001", "709137006", "550991000124107", "551001000124108"}
ICH = "urn:oid:2.16.840.1.113883.3.989.2.1.1.19"
AE_PROFILE = AE_IG + "StructureDefinition/AdverseEvent-clinical-research"


def _codes(concept: dict[str, Any] | None, system: str) -> list[str]:
    return [c["code"] for c in (concept or {}).get("coding", []) if c.get("system") == system]


def _extensions(resource: dict[str, Any], url: str) -> list[dict[str, Any]]:
    return [e for e in resource.get("extension", []) if e["url"] == url]


def _us_core_patient(r: dict[str, Any]) -> None:
    assert r["identifier"] and all(i["system"] and i["value"] for i in r["identifier"])
    # us-core-6: a family or given name, or a data-absent reason
    assert r["name"] and all(
        n.get("family") or n.get("given") or any(e["url"] == DATA_ABSENT for e in n.get("extension", []))
        for n in r["name"]
    )
    assert r["gender"] in ("male", "female", "other", "unknown")


def _primary_cancer_condition(r: dict[str, Any]) -> None:
    categories = {c["code"] for concept in r["category"] for c in concept["coding"]}
    assert categories & {"problem-list-item", "health-concern"}  # US Core's category slice
    assert r["clinicalStatus"]["coding"]  # con-3 for a problem-list item
    assert r["code"]["coding"] and r["subject"]["reference"]
    for histology in _extensions(r, MCODE + "mcode-histology-morphology-behavior"):
        assert histology["valueCodeableConcept"]["coding"]


def _cancer_disease_status(r: dict[str, Any]) -> None:
    assert _codes(r["code"], LOINC) == ["97509-4"]
    assert r["subject"]["reference"] and r["status"]
    for unused in ("specimen", "device", "referenceRange", "hasMember", "component"):
        assert unused not in r
    assert not {
        k for k in r if k.startswith("effective") and k not in ("effectiveDateTime", "_effectiveDateTime")
    }
    assert not {k for k in r if k.startswith("value") and k != "valueCodeableConcept"}
    assert set(_codes(r.get("valueCodeableConcept"), SNOMED)) <= TREND_MAX


def _us_core_lab(r: dict[str, Any]) -> None:
    assert any(c["code"] == "laboratory" for concept in r["category"] for c in concept["coding"])
    assert _codes(r["code"], LOINC) and r["subject"]["reference"] and r["status"]
    assert len(r.get("effectiveDateTime", "0000-00-00")) >= 10  # us-core-1: at least to the day


def _ae_clinical_research(r: dict[str, Any]) -> None:
    [status] = [e for e in r["modifierExtension"] if e["url"] == AE_IG + "StructureDefinition/status"]
    assert status["valueCode"] in ("in-progress", "completed", "entered-in-error", "unknown")
    assert r["actuality"] == "actual" and len(r["study"]) == 1
    [seriousness] = _codes(
        r["seriousness"], "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
    )
    [outcome] = _codes(r["outcome"], ICH)
    assert outcome in (
        "fatal",
        "notrecoveredorresolved",
        "resolvedwithsequelae",
        "recoveredorresolved",
        "roveringorresolving",
    )
    assert "severity" not in r and "suspectEntity" not in r and "resultingCondition" not in r
    if seriousness == "serious":  # aeClinRes-seriousness-1
        assert _extensions(r, AE_IG + "StructureDefinition/seriousness-criteria")


PROFILE_RULES: dict[str, Callable[[dict[str, Any]], None]] = {
    MCODE + "mcode-cancer-patient": _us_core_patient,
    MCODE + "mcode-primary-cancer-condition": _primary_cancer_condition,
    MCODE + "mcode-cancer-disease-status": _cancer_disease_status,
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab": _us_core_lab,
    AE_PROFILE: _ae_clinical_research,
}


def _bundles(client: TestClient[Any]) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    for study in get_all(client, "studies"):
        data = _export(client, study["id"], "fhir").json()
        Bundle.model_validate(data)
        yield study, [entry["resource"] for entry in data["entry"]]


@pytest.fixture(scope="module")
def exported(seeded_source: TestClient[Any]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    return list(_bundles(seeded_source))


def test_every_resource_names_a_profile_it_satisfies(
    exported: list[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    claimed: dict[str, int] = {}
    for _, resources in exported:
        for resource in resources:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            [profile] = resource["meta"]["profile"]
            claimed[profile] = claimed.get(profile, 0) + 1
            if profile in PROFILE_RULES:
                PROFILE_RULES[profile](resource)
            else:
                assert profile == f"http://hl7.org/fhir/StructureDefinition/{resource['resourceType']}", (
                    profile
                )
    # The seed data exercises every published profile the export claims but the AE research one
    # (no seed source says whether an event was serious: the next test).
    assert set(PROFILE_RULES) - {AE_PROFILE} <= set(claimed), set(PROFILE_RULES) - set(claimed)


def test_adverse_events_claim_the_research_profile_only_when_they_satisfy_it(
    seeded_source: TestClient[Any],
    empty_target: TestClient[Any],
) -> None:
    """Seriousness and outcome known, and a serious event only with the criterion the registry
    knows (death): otherwise the core AdverseEvent profile."""
    [study] = [
        s for s in get_all(seeded_source, "studies") if s["source_document"] == "004_99c9fed070f33cc4.txt"
    ]
    document = _export(seeded_source, study["id"]).json()
    cases = [
        (False, "resolved", True),
        (True, "fatal", True),
        (True, "resolved", False),
        (None, "resolved", False),
        (False, None, False),
    ]
    events = [e for p in document["patients"] for e in p["adverse_events"]]
    assert len(events) >= len(cases)
    for case, (event, (serious, outcome, _)) in enumerate(zip(events, cases, strict=False)):
        event.pop("serious", None), event.pop("outcome", None)
        event.update({k: v for k, v in (("serious", serious), ("outcome", outcome)) if v is not None})
        event["term"] = f"case {case}"
        if outcome == "fatal":
            event["grade"] = 5
    imported = empty_target.post(f"{API}/studies/import", json=document)
    assert imported.status_code == 201, imported.text
    bundle = _export(empty_target, imported.json()["study_id"], "fhir").json()
    fhir = {
        r["resource"]["event"]["text"]: r["resource"]
        for r in bundle["entry"]
        if r["resource"]["resourceType"] == "AdverseEvent"
    }
    for case, (_, outcome, profiled) in enumerate(cases):
        resource = fhir[f"case {case}"]
        get_fhir_model_class("AdverseEvent").model_validate(resource)
        if profiled:
            assert resource["meta"]["profile"] == [AE_PROFILE]
            _ae_clinical_research(resource)
        else:
            assert resource["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/AdverseEvent"]
        if outcome is not None:
            assert _codes(resource["outcome"], ICH) == [
                {"resolved": "recoveredorresolved", "fatal": "fatal"}[outcome]
            ]


def test_patients_stay_de_identified(exported: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    for _, resources in exported:
        for patient in (r for r in resources if r["resourceType"] == "Patient"):
            assert set(patient) <= {
                "resourceType",
                "id",
                "meta",
                "identifier",
                "name",
                "gender",
                "deceasedBoolean",
            }
            assert patient["identifier"] == [
                {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{patient['id']}"}
            ]
            assert all(set(name) == {"extension"} for name in patient["name"])  # masked, no text


def test_adverse_events_carry_their_meddra_codes_and_grades(
    seeded_source: TestClient[Any],
    exported: list[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    coded = 0
    for study, resources in exported:
        fhir = {r["id"]: r for r in resources if r["resourceType"] == "AdverseEvent"}
        events = get_all(seeded_source, "adverse-events", study_id=study["id"])
        assert set(fhir) == {e["id"] for e in events}
        for event in events:
            resource = fhir[event["id"]]
            assert _codes(resource["event"], MEDDRA) == (
                [event["meddra_code"]] if event.get("meddra_code") else []
            )
            coded += bool(event.get("meddra_code"))
            grades = _extensions(resource, AE_IG + "StructureDefinition/severity-or-grade")
            if event.get("grade") is None:
                assert grades == []
            else:
                [grade] = grades
                assert _codes(
                    grade["valueCodeableConcept"], AE_IG + "CodeSystem/adverse-event-severity-or-grade-cs"
                ) == [str(event["grade"])]
            if event.get("onset_day") is not None:
                assert _extensions(resource, STUDY_DAY) == [
                    {"url": STUDY_DAY, "valueInteger": event["onset_day"]}
                ]
    assert coded > 50  # the seed's curated MedDRA codes (58 of 74 when written)


def test_each_patient_has_a_coded_leukaemia(
    seeded_source: TestClient[Any],
    exported: list[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    expected_icd10 = {"T-ALL": "C91.0", "B-ALL": "C91.0", "AML": "C92.0"}
    expected_icdo3 = {"T-ALL": "9837/3", "B-ALL": "9811/3", "AML": "9861/3"}
    seen = 0
    for study, resources in exported:
        conditions = {
            r["subject"]["reference"].removeprefix("urn:uuid:"): r
            for r in resources
            if r["resourceType"] == "Condition"
        }
        for patient in get_all(seeded_source, "patients", study_id=study["id"]):
            condition = conditions[patient["id"]]
            icd10 = patient.get("icd10_code") or expected_icd10.get(patient["diagnosis"])
            assert _codes(condition["code"], ICD10) == ([icd10] if icd10 else [])
            morphology = patient.get("icdo3_morphology") or expected_icdo3.get(patient["diagnosis"])
            histology = _extensions(condition, MCODE + "mcode-histology-morphology-behavior")
            assert [_codes(h["valueCodeableConcept"], ICDO3) for h in histology] == (
                [[morphology]] if morphology else []
            )
            seen += 1
    assert seen > 20


def test_responses_are_coded_disease_statuses_with_their_mrd(
    seeded_source: TestClient[Any],
    exported: list[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    full_remission, dated, undated, flow = "550991000124107", 0, 0, 0
    for study, resources in exported:
        by_id = {r["id"]: r for r in resources}
        for outcome in get_all(seeded_source, "outcomes", study_id=study["id"], kind="response"):
            status = by_id[outcome["id"]]
            assert _codes(status["code"], LOINC) == ["97509-4"]
            if outcome.get("category") in ("CR", "CRi", "CRh"):
                assert full_remission in _codes(status["valueCodeableConcept"], SNOMED)
            if outcome.get("date"):
                assert status["effectiveDateTime"] == outcome["date"]
                dated += 1
            else:
                assert status["_effectiveDateTime"]["extension"][0] == {
                    "url": DATA_ABSENT,
                    "valueCode": "unknown",
                }
                undated += 1
            if outcome.get("study_day") is not None:
                assert _extensions(status, STUDY_DAY) == [
                    {"url": STUDY_DAY, "valueInteger": outcome["study_day"]}
                ]
        responses = get_all(seeded_source, "outcomes", study_id=study["id"], kind="response")
        with_mrd = [o for o in responses if o.get("mrd_status") or o.get("mrd_level") is not None]
        mrd = [
            r
            for r in resources
            if r["resourceType"] == "Observation"
            and r["code"].get("text", "").startswith("Minimal residual disease")
        ]
        assert len(mrd) == len(with_mrd)
        for observation in mrd:
            by_flow = " by flow" in observation["code"]["text"]
            assert _codes(observation["code"], LOINC) == (["67128-9"] if by_flow else [])
            flow += by_flow
            if "valueCodeableConcept" in observation:  # a status without a level: SNOMED CT's result
                assert _codes(observation["valueCodeableConcept"], SNOMED) in (["260385009"], ["10828004"])
        levels = sorted(o["mrd_level"] * 100 for o in with_mrd if o.get("mrd_level") is not None)
        quantities = sorted(m["valueQuantity"]["value"] for m in mrd if "valueQuantity" in m)
        assert quantities == pytest.approx(levels)
        assert all(m["valueQuantity"]["code"] == "%" for m in mrd if "valueQuantity" in m)
    assert dated and undated and flow


def test_relapses_are_disease_statuses_that_worsened(
    seeded_source: TestClient[Any],
    exported: list[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    relapses = 0
    for study, resources in exported:
        by_id = {r["id"]: r for r in resources}
        for outcome in get_all(seeded_source, "outcomes", study_id=study["id"], kind="event"):
            resource = by_id[outcome["id"]]
            if outcome["event_type"] in ("relapse", "progression"):
                assert resource["meta"]["profile"] == [MCODE + "mcode-cancer-disease-status"]
                assert "271299001" in _codes(resource["valueCodeableConcept"], SNOMED)
                relapses += 1
            if outcome["event_type"] == "death":
                [patient] = [
                    r
                    for r in resources
                    if r["resourceType"] == "Patient"
                    and r["id"] == resource["subject"]["reference"].removeprefix("urn:uuid:")
                ]
                assert patient["deceasedBoolean"] is True
    assert relapses


def test_sites_are_locations_of_the_study(
    seeded_source: TestClient[Any], empty_target: TestClient[Any]
) -> None:
    """The seed sources name no centres: a seed study with two sites added, imported and exported."""
    [study] = [
        s for s in get_all(seeded_source, "studies") if s["source_document"] == "004_99c9fed070f33cc4.txt"
    ]
    document = _export(seeded_source, study["id"]).json()
    document["sites"] = [
        {"code": "LYO", "institution": "Centre Léon Bérard", "city": "Lyon", "country": "France"},
        {"code": "X", "institution": "A centre with no address"},
    ]
    document["patients"][0]["site"] = "LYO"
    imported = empty_target.post(f"{API}/studies/import", json=document)
    assert imported.status_code == 201, imported.text
    study_id = imported.json()["study_id"]
    resources = [e["resource"] for e in _export(empty_target, study_id, "fhir").json()["entry"]]
    sites = get_all(empty_target, "sites", study_id=study_id)
    locations = {r["id"]: r for r in resources if r["resourceType"] == "Location"}
    assert set(locations) == {s["id"] for s in sites} and len(sites) == 2
    [research_study] = [r for r in resources if r["resourceType"] == "ResearchStudy"]
    assert {s["reference"].removeprefix("urn:uuid:") for s in research_study["site"]} == set(locations)
    for site in sites:
        location = locations[site["id"]]
        get_fhir_model_class("Location").model_validate(location)
        assert location["name"] == site["institution"]
        assert location.get("address") == (
            {"city": "Lyon", "country": "France"} if site["code"] == "LYO" else None
        )


def test_the_capability_statement_lists_what_the_export_claims(
    seeded_source: TestClient[Any],
    exported: list[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    response = seeded_source.get(f"{API}/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    get_fhir_model_class("CapabilityStatement").model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1" and statement["kind"] == "instance"
    [rest] = statement["rest"]
    declared = {r["type"]: {r["profile"], *r.get("supportedProfile", [])} for r in rest["resource"]}
    for _, resources in exported:
        for resource in resources:
            assert resource["meta"]["profile"][0] in declared[resource["resourceType"]], resource[
                "resourceType"
            ]


def test_ndjson_holds_the_bundles_resources_one_per_line(seeded_source: TestClient[Any]) -> None:
    [study] = [
        s for s in get_all(seeded_source, "studies") if s["source_document"] == "001_eee766f12762b4c9.txt"
    ]
    lines = _export(seeded_source, study["id"], "ndjson")
    assert lines.headers["content-type"].startswith("application/fhir+ndjson")
    resources = [json.loads(line) for line in lines.text.splitlines()]
    bundle = _export(seeded_source, study["id"], "fhir").json()
    assert [r["id"] for r in resources] == [e["resource"]["id"] for e in bundle["entry"]]
    ids = {(r["resourceType"], r["id"]) for r in resources}
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        for reference in _references(resource):
            kind, _, id = reference.partition("/")
            assert (kind, id) in ids, reference  # relative references, resolved within the export


def test_the_bundles_references_resolve(
    exported: list[tuple[dict[str, Any], list[dict[str, Any]]]], seeded_source: TestClient[Any]
) -> None:
    for study, resources in exported:
        ids = {r["id"] for r in resources}
        assert len(ids) == len(resources)  # every fullUrl unique
        for resource in resources:
            for reference in _references(resource):
                assert reference.removeprefix("urn:uuid:") in ids, (resource["resourceType"], reference)
        kinds = [r["resourceType"] for r in resources]
        patients = get_all(seeded_source, "patients", study_id=study["id"])
        assert (
            kinds.count("Patient")
            == kinds.count("ResearchSubject")
            == kinds.count("Condition")
            == len(patients)
        )
        assert kinds.count("ResearchStudy") == kinds.count("Group") == 1
        assert "Provenance" in kinds


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference":
                yield item
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)
