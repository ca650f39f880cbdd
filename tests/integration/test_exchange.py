"""Whole studies in and out: the JSON document round-trips through import on both databases,
an import is all or nothing with every problem pointed at, the CSV zip carries the same data
(the FHIR export: tests/integration/test_fhir.py)."""

import copy
import csv
import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from tests.integration.test_seed import get_all

API = "/api/v1"
# Each export format is an operation of its own (one media type each).
EXPORT_PATHS = {"json": "", "fhir": "/fhir", "ndjson": "/fhir-ndjson", "csv": "/csv", "ctgov": "/ctgov"}


def _export(client: TestClient[Any], study_id: str, format: str = "json") -> Any:
    response = client.get(f"{API}/studies/{study_id}/export{EXPORT_PATHS[format]}")
    assert response.status_code == 200, response.text
    assert f'filename="study-{study_id}.' in response.headers["content-disposition"]
    return response


def _without_time(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "exported_at"}


def test_every_seed_study_round_trips_through_import(
    seeded_source: TestClient[Any], empty_target: TestClient[Any]
) -> None:
    studies = get_all(seeded_source, "studies")
    assert len(studies) == 5
    for study in studies:
        document = _export(seeded_source, study["id"]).json()
        imported = empty_target.post(f"{API}/studies/import", json=document)
        assert imported.status_code == 201, imported.text
        new_id = imported.json()["study_id"]
        assert imported.headers["location"] == f"{API}/studies/{new_id}" and new_id != study["id"]
        assert imported.json()["counts"]["patients"] == len(document["patients"])
        again = _export(empty_target, new_id).json()
        assert _without_time(again) == _without_time(document), study["source_document"]
    # The same statistics come out of the copy.
    for study in studies:
        [copy_] = [
            s for s in get_all(empty_target, "studies") if s["source_document"] == study["source_document"]
        ]
        for path in ("response-rates", "adverse-event-incidence", "survival?group_by=arm"):
            original = seeded_source.get(f"{API}/studies/{study['id']}/{path}")
            copied = empty_target.get(f"{API}/studies/{copy_['id']}/{path}")
            assert original.status_code == copied.status_code == 200, (path, original.text)
            assert _without_ids(copied.json()) == _without_ids(original.json()), path


def _without_ids(value: Any) -> Any:
    """Statistics with every id left out (groups keyed by arm ids, patients by theirs), and the
    version of the data each database computed them on."""
    if isinstance(value, dict):
        return {
            k: _without_ids(v)
            for k, v in value.items()
            if not k.endswith("id") and k not in ("key", "group_key", "data_version")
        }
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def _seed_document(client: TestClient[Any], source_document: str) -> dict[str, Any]:
    [study] = [s for s in get_all(client, "studies") if s["source_document"] == source_document]
    document: dict[str, Any] = _export(client, study["id"]).json()
    return document


def test_an_import_is_all_or_nothing_and_points_at_every_problem(
    seeded_source: TestClient[Any], empty_target: TestClient[Any]
) -> None:
    document = copy.deepcopy(_seed_document(seeded_source, "004_99c9fed070f33cc4.txt"))
    document["patients"][1]["age_years"] = -3  # a type/range error
    document["patients"][4]["outcomes"][0]["study_day"] = 0  # a data rule (no day 0)
    document["patients"][6]["arm"] = "arm-9"  # an unknown key
    document["patients"][2]["treatments"][0]["components"][0]["agent"] = "no-such-agent"
    response = empty_target.post(f"{API}/studies/import", json=document)
    assert response.status_code == 422 and response.headers["content-type"].startswith(
        "application/problem+json"
    )
    problem = response.json()
    assert problem["type"] == "/problems/import-rejected" and "nothing was stored" in problem["detail"]
    pointers = [e["pointer"] for e in problem["errors"]]
    assert "/patients/1/age_years" in pointers
    assert any(p.startswith("/patients/4/outcomes/0") for p in pointers)
    assert "/patients/6/arm" in pointers
    assert "/patients/2/treatments/0/components/0/agent" in pointers
    # Records that refer to a refused one are not reported again (the treatment's events).
    assert not any(p.startswith("/patients/2/adverse_events") for p in pointers)
    # Nothing was stored, not even the records before the first problem, nor the agents.
    for collection in ("studies", "patients", "agents", "arms"):
        assert get_all(empty_target, collection) == [], collection


def test_a_malformed_envelope_is_a_400_naming_the_field(empty_target: TestClient[Any]) -> None:
    response = empty_target.post(f"{API}/studies/import", json={"format": "something-else", "study": {}})
    assert response.status_code == 400
    assert any(e.get("field") == "format" for e in response.json()["errors"])


def test_an_import_honours_idempotency_and_refuses_a_document_already_stored(
    seeded_source: TestClient[Any], empty_target: TestClient[Any]
) -> None:
    document = _seed_document(seeded_source, "003_5211f19740d87809.txt")
    key = {"Idempotency-Key": f"import-{uuid.uuid4()}"}
    first = empty_target.post(f"{API}/studies/import", json=document, headers=key)
    replay = empty_target.post(f"{API}/studies/import", json=document, headers=key)
    assert first.status_code == replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first.json()
    again = empty_target.post(f"{API}/studies/import", json=document)
    assert again.status_code == 409 and again.json()["type"] == "/problems/already-imported"
    assert len(get_all(empty_target, "studies")) == 1


def test_an_import_is_audited_by_one_record_holding_the_documents_digest(
    seeded_source: TestClient[Any], empty_target: TestClient[Any]
) -> None:
    document = _seed_document(seeded_source, "000_e26ba34dc317a2d3.txt")
    body = json.dumps(document).encode()
    response = empty_target.post(
        f"{API}/studies/import", content=body, headers={"Content-Type": "application/json"}
    )
    imported = response.json()
    trail = empty_target.get(f"{API}/audit", params={"limit": 500}).json()
    [entry] = trail["items"]
    assert (entry["action"], entry["resource_type"], entry["resource_id"]) == (
        "create",
        "study",
        imported["study_id"],
    )
    assert entry["changes"]["document_sha256"] == [None, hashlib.sha256(body).hexdigest()]
    assert entry["changes"]["records"][1] == {**imported["counts"], "agents": imported["agents_added"]}
    assert entry["changes"]["source_document"] == [None, document["document"]]


def test_the_csv_zip_holds_every_table_and_the_time_to_event_rows(seeded_source: TestClient[Any]) -> None:
    [study] = [
        s for s in get_all(seeded_source, "studies") if s["source_document"] == "004_99c9fed070f33cc4.txt"
    ]
    response = _export(seeded_source, study["id"], "csv")
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))

    def table(name: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(archive.read(name).decode())))

    patients = table("patients.csv")
    assert {p["id"] for p in patients} == {
        p["id"] for p in get_all(seeded_source, "patients", study_id=study["id"])
    }
    events = table("adverse_events.csv")
    assert len(events) == len(get_all(seeded_source, "adverse-events", study_id=study["id"]))
    assert {e["patient_id"] for e in events} <= {p["id"] for p in patients}
    assert json.loads(patients[0]["provenance"])[0]["source_document"] == "004_99c9fed070f33cc4.txt"
    tte = seeded_source.get(
        f"{API}/studies/{study['id']}/time-to-event", params={"endpoint": "OS", "group_by": "arm"}
    ).json()
    rows = table("time_to_event_os.csv")
    assert [(r["patient_id"], float(r["time"]), r["cnsr"]) for r in rows] == [
        (r["patient_id"], r["time"], str(r["cnsr"])) for r in tte["rows"]
    ]
    assert "last_recorded_day" not in patients[0]
    # Every endpoint's rows, as the API gives them.
    for endpoint in ("OS", "RFS", "EFS", "GRFS", "CRD"):
        answer = seeded_source.get(
            f"{API}/studies/{study['id']}/time-to-event", params={"endpoint": endpoint, "group_by": "arm"}
        ).json()
        rows = table(f"time_to_event_{endpoint.lower()}.csv")
        assert [(r["patient_id"], r["cnsr"]) for r in rows] == [
            (r["patient_id"], str(r["cnsr"])) for r in answer["rows"]
        ], endpoint
        assert len(table(f"excluded_{endpoint.lower()}.csv")) == len(answer["excluded"]), endpoint
    # The agents of its arms and treatments.
    used = {i for arm in get_all(seeded_source, "arms", study_id=study["id"]) for i in arm["agent_ids"]}
    components = {
        c["agent_id"]
        for t in get_all(seeded_source, "treatments", study_id=study["id"])
        for c in t["components"]
    }
    assert {a["id"] for a in table("agents.csv")} == used | components and components
    # The dictionary describes every column of every file, in the file's order.
    dictionary = table("data_dictionary.csv")
    for name in archive.namelist():
        if name == "data_dictionary.csv":
            continue
        header = next(csv.reader(io.StringIO(archive.read(name).decode())))
        described = [d for d in dictionary if d["file"] == name]
        assert [d["column"] for d in described] == header, name
        assert all(
            d["type"]
            in ("string", "integer", "number", "boolean", "json", "uuid", "datetime (ISO 8601, UTC)")
            for d in described
        ), name
    entry = {(d["file"], d["column"]): d for d in dictionary}
    assert entry[("patients.csv", "age_years")]["unit"] == "years"
    assert entry[("patients.csv", "icd10_code")]["code_system"] == "ICD-10 (WHO)"
    assert entry[("adverse_events.csv", "meddra_code")]["code_system"].startswith("MedDRA")
    assert entry[("time_to_event_os.csv", "cnsr")]["code_system"].startswith("CDISC")


def test_exporting_an_unknown_study_or_format_is_refused(seeded_source: TestClient[Any]) -> None:
    assert seeded_source.get(f"{API}/studies/{uuid.uuid4()}/export").status_code == 404
    [study] = get_all(seeded_source, "studies")[:1]
    assert (
        seeded_source.get(f"{API}/studies/{study['id']}/export", params={"format": "xml"}).status_code == 400
    )
    for path in EXPORT_PATHS.values():
        assert seeded_source.get(f"{API}/studies/{uuid.uuid4()}/export{path}").status_code == 404, path


def test_each_format_has_its_own_operation_and_format_redirects_there(seeded_source: TestClient[Any]) -> None:
    """One media type per operation (a generated client decodes each body as what it is); the
    `format=` form of the first releases answers 307 with the operation's Location."""
    [study] = get_all(seeded_source, "studies")[:1]
    base = f"{API}/studies/{study['id']}/export"
    media = {
        "json": "application/json",
        "fhir": "application/fhir+json",
        "ndjson": "application/fhir+ndjson",
        "csv": "application/zip",
        "ctgov": "application/json",
    }

    def same(format: str, response: Any) -> Any:
        """The body without what changes from one export to the next (the time it was taken)."""
        if format == "json":
            return _without_time(response.json())
        if format == "csv":
            archive = zipfile.ZipFile(io.BytesIO(response.content))
            return {name: archive.read(name) for name in archive.namelist()}
        return response.content

    for format, path in EXPORT_PATHS.items():
        direct = seeded_source.get(base + path)
        assert direct.status_code == 200 and direct.headers["content-type"].startswith(media[format]), format
        via = seeded_source.get(base, params={"format": format}, follow_redirects=False)
        if format == "json":
            assert via.status_code == 200 and same(format, via) == same(format, direct)
        else:
            assert via.status_code == 307 and via.headers["location"] == base + path, format
            followed = seeded_source.get(base, params={"format": format})
            assert same(format, followed) == same(format, direct), format


CTGOV_RECORD = Path(__file__).resolve().parents[1] / "fixtures" / "ctgov" / "NCT09990001.json"


def test_a_clinicaltrials_gov_record_imports_field_by_field(empty_target: TestClient[Any]) -> None:
    record = json.loads(CTGOV_RECORD.read_text())
    response = empty_target.post(f"{API}/studies/import/clinicaltrials-gov", json=record)
    assert response.status_code == 201, response.text
    assert response.json()["agents_added"] == 2  # daratumumab and venetoclax (not the diagnostic test)
    study = empty_target.get(f"{API}/studies/{response.json()['study_id']}").json()
    assert study["registry_ids"] == ["NCT09990001"]
    assert study["title"] == "Daratumumab Plus Venetoclax for MRD-positive T-ALL"
    assert study["official_title"].startswith("A Phase 1/2, Randomized")
    assert study["overall_status"] == "RECRUITING" and study["phases"] == ["PHASE1", "PHASE2"]
    assert study["design"] == "randomized_trial"
    assert (study["start_date"], study["end_date"]) == ("2025-03-15", "2028-06")
    assert study["target_enrollment"] == 60 and study["actual_enrollment"] is None  # ESTIMATED
    assert study["sponsor"] == "Institute of Hematology & Blood Diseases Hospital"
    assert study["conditions"] == ["T-cell Acute Lymphoblastic Leukemia", "Measurable Residual Disease"]
    assert (study["institution"], study["country"]) == (
        "Institute of Hematology & Blood Diseases Hospital",
        "China",
    )
    assert study["eligibility"] == {
        "criteria": record["protocolSection"]["eligibilityModule"]["eligibilityCriteria"],
        "sex": "ALL",
        "minimum_age": "18 Years",
        "maximum_age": "65 Years",
        "healthy_volunteers": False,
    }
    assert study["source_document"] == "ClinicalTrials.gov NCT09990001"
    located = {p["location"] for p in study["provenance"]}
    assert "/protocolSection/statusModule/overallStatus" in located
    assert "/protocolSection/eligibilityModule" in located
    arms = {a["label"]: a for a in get_all(empty_target, "arms", study_id=study["id"])}
    agents = {a["id"]: a["name"] for a in get_all(empty_target, "agents")}
    assert {label: sorted(agents[i] for i in arm["agent_ids"]) for label, arm in arms.items()} == {
        "Daratumumab": ["daratumumab"],
        "Daratumumab + Venetoclax": ["daratumumab", "venetoclax"],
    }
    # The same record again is the same study: refused, nothing added.
    again = empty_target.post(f"{API}/studies/import/clinicaltrials-gov", json=record)
    assert again.status_code == 409


def test_a_registry_record_with_bad_values_is_refused_with_pointers(empty_target: TestClient[Any]) -> None:
    record = json.loads(CTGOV_RECORD.read_text())
    record["protocolSection"]["statusModule"]["startDateStruct"]["date"] = "March 2025"
    response = empty_target.post(f"{API}/studies/import/clinicaltrials-gov", json=record)
    assert response.status_code == 422
    assert {e["pointer"] for e in response.json()["errors"]} == {"/study/start_date"}
    record["protocolSection"]["statusModule"]["startDateStruct"]["date"] = "2025-03"
    record["protocolSection"]["eligibilityModule"]["minimumAge"] = "eighteen"
    record["protocolSection"]["armsInterventionsModule"]["armGroups"][1]["label"] = ""
    response = empty_target.post(f"{API}/studies/import/clinicaltrials-gov", json=record)
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"/study/eligibility/minimum_age"}  # the study refused, its arms are not tried
    assert get_all(empty_target, "studies") == [] and get_all(empty_target, "agents") == []


def test_the_seed_registry_entry_round_trips_through_a_clinicaltrials_gov_record(
    seeded_source: TestClient[Any], empty_target: TestClient[Any]
) -> None:
    [original] = [
        s for s in get_all(seeded_source, "studies") if s["source_document"] == "003_5211f19740d87809.txt"
    ]
    record = _export(seeded_source, original["id"], "ctgov").json()
    assert record["protocolSection"]["statusModule"]["overallStatus"] == "NOT_YET_RECRUITING"
    imported = empty_target.post(f"{API}/studies/import/clinicaltrials-gov", json=record)
    assert imported.status_code == 201, imported.text
    copy_ = empty_target.get(f"{API}/studies/{imported.json()['study_id']}").json()
    kept = (
        "title", "design", "phases", "overall_status", "registry_ids", "conditions", "sponsor",
        "institution", "country", "target_enrollment", "actual_enrollment", "start_date", "end_date",
        "summary", "official_title", "eligibility",
    )  # fmt: skip
    assert {k: copy_[k] for k in kept} == {k: original[k] for k in kept}

    def arms(client: TestClient[Any], study_id: str) -> list[tuple[str, str, list[str]]]:
        names = {a["id"]: a["name"] for a in get_all(client, "agents")}
        return [
            (a["label"], a["description"], sorted(names[i] for i in a["agent_ids"]))
            for a in get_all(client, "arms", study_id=study_id)
        ]

    assert arms(empty_target, copy_["id"]) == arms(seeded_source, original["id"])
    # And back out again: the same record.
    assert _export(empty_target, copy_["id"], "ctgov").json() == record


def test_a_malformed_registry_id_is_a_400_not_a_database_error(empty_target: TestClient[Any]) -> None:
    record = json.loads(CTGOV_RECORD.read_text())
    for bad in ("NCT0999\x000001", "not-an-nct-id"):
        record["protocolSection"]["identificationModule"]["nctId"] = bad
        response = empty_target.post(f"{API}/studies/import/clinicaltrials-gov", json=record)
        assert response.status_code == 400, response.text
    assert get_all(empty_target, "studies") == []
