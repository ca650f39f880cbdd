from typing import Any

from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"


def _patient(client: TestClient[Any]) -> dict[str, Any]:
    return f.patient(client, f.study(client)["id"])


def test_adverse_event_cross_field_rules(client: TestClient[Any]) -> None:
    patient = _patient(client)
    base = {"patient_id": patient["id"], "term": "Sepsis"}
    cases = [
        ({"grade": 5, "outcome": "resolved"}, "outcome"),
        ({"grade": 3, "outcome": "fatal"}, "grade"),
        ({"grade": 2, "onset_day": 10, "resolution_day": 3}, "resolution_day"),
        ({"grade": 2, "onset_day": 0}, "onset_day"),
        ({}, "grade"),
    ]
    for fields, offending in cases:
        response = client.post(f"{API}/adverse-events", json={**base, **fields})
        assert response.status_code == 422, fields
        assert response.json()["errors"][0]["field"] == offending
    assert client.get(f"{API}/adverse-events").json()["total"] == 0
    fatal = f.adverse_event(client, patient["id"], term="Sepsis", grade=5, outcome="fatal")
    assert fatal["grade"] == 5
    ranged = f.adverse_event(client, patient["id"], term="Headache", grade=None, grade_text="I/II")
    assert ranged["grade"] is None and ranged["grade_text"] == "I/II"


def test_adverse_event_patch_is_checked_against_the_stored_record(client: TestClient[Any]) -> None:
    patient = _patient(client)
    event = f.adverse_event(client, patient["id"], onset_day=5)
    assert client.patch(f"{API}/adverse-events/{event['id']}", json={"resolution_day": 4}).status_code == 422
    assert client.patch(f"{API}/adverse-events/{event['id']}", json={"grade": 5}).status_code == 422
    ok = client.patch(f"{API}/adverse-events/{event['id']}", json={"grade": 5, "outcome": "fatal"})
    assert ok.status_code == 200 and ok.json()["version"] == 2


def test_adverse_event_treatment_must_be_the_patients(client: TestClient[Any]) -> None:
    patient, other = _patient(client), _patient(client)
    foreign = f.treatment(client, other["id"])
    response = client.post(
        f"{API}/adverse-events",
        json={"patient_id": patient["id"], "term": "Nausea", "grade": 1, "treatment_id": foreign["id"]},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "treatment_id"


def test_adverse_event_filters(client: TestClient[Any]) -> None:
    patient = _patient(client)
    f.adverse_event(client, patient["id"], term="Neutropenia", grade=4, grading_system="CTCAE_v5")
    f.adverse_event(
        client, patient["id"], term="Cytokine release syndrome", grade=1, grading_system="ASTCT_2019"
    )
    assert client.get(f"{API}/adverse-events", params={"term": "neutropenia"}).json()["total"] == 1
    assert client.get(f"{API}/adverse-events", params={"grade_min": 3}).json()["total"] == 1
    assert client.get(f"{API}/adverse-events", params={"grading_system": "ASTCT_2019"}).json()["total"] == 1
    assert client.get(f"{API}/adverse-events", params={"study_id": patient["study_id"]}).json()["total"] == 2


def test_outcome_union_round_trip(client: TestClient[Any]) -> None:
    patient = _patient(client)
    response = f.response(
        client,
        patient["id"],
        study_day=32,
        category="CRi",
        mrd_status="negative",
        mrd_method="flow",
        mrd_sensitivity=1e-4,
        sample="bone_marrow",
        markers=[{"marker": "CD38", "percent_positive": 0}],
        timing_text="day 32 of consolidation",
    )
    assert response["kind"] == "response" and response["mrd_sensitivity"] == 1e-4
    event = f.event(client, patient["id"], event_type="death", cause="infection")
    assert event["kind"] == "event" and "category" not in event
    observation = f.create(
        client,
        "outcomes",
        {
            "kind": "observation",
            "patient_id": patient["id"],
            "name": "days ANC < 0.5",
            "value": 20,
            "unit": "days",
        },
    )
    assert observation["value"] == 20
    listed = client.get(f"{API}/outcomes", params={"patient_id": patient["id"]}).json()["items"]
    assert [o["kind"] for o in listed] == ["response", "event", "observation"]
    assert client.get(f"{API}/outcomes", params={"kind": "event"}).json()["total"] == 1


def test_outcome_variant_fields_are_enforced(client: TestClient[Any]) -> None:
    patient = _patient(client)
    missing_type = client.post(f"{API}/outcomes", json={"kind": "event", "patient_id": patient["id"]})
    assert missing_type.status_code == 400
    wrong_field = client.post(
        f"{API}/outcomes",
        json={"kind": "event", "patient_id": patient["id"], "event_type": "death", "category": "CR"},
    )
    assert wrong_field.status_code == 400
    event = f.event(client, patient["id"])
    mixed = client.patch(f"{API}/outcomes/{event['id']}", json={"mrd_status": "negative"})
    assert mixed.status_code == 422
    assert mixed.json()["errors"][0]["field"] == "mrd_status"
    assert client.patch(f"{API}/outcomes/{event['id']}", json={"study_day": 120}).json()["study_day"] == 120


def test_possible_categories_only_without_a_category(client: TestClient[Any]) -> None:
    patient = _patient(client)
    both = client.post(
        f"{API}/outcomes",
        json={
            "kind": "response",
            "patient_id": patient["id"],
            "category": "CR",
            "possible_categories": ["CR", "CRi"],
        },
    )
    assert both.status_code == 422
    either = f.response(
        client, patient["id"], category=None, possible_categories=["CR", "CRi"], category_text="CR or CRi"
    )
    assert either["possible_categories"] == ["CR", "CRi"]


def test_reported_result_needs_provenance_and_ordered_bounds(client: TestClient[Any]) -> None:
    study = f.study(client)
    quote = [{"source_document": "x.txt", "location": "Abstract", "quote": "92.3% (12/13)"}]
    body = {
        "study_id": study["id"],
        "measure": "CR rate",
        "numerator": 12,
        "denominator": 13,
        "value": 92.3,
        "unit": "%",
    }
    assert client.post(f"{API}/reported-results", json=body).status_code == 400
    assert (
        client.post(
            f"{API}/reported-results", json={**body, "provenance": quote, "numerator": 14}
        ).status_code
        == 422
    )
    assert (
        client.post(
            f"{API}/reported-results", json={**body, "provenance": quote, "ci_lower": 99, "ci_upper": 60}
        ).status_code
        == 422
    )
    created = f.create(
        client, "reported-results", {**body, "provenance": quote, "ci_lower": 66.7, "ci_upper": 99.6}
    )
    assert created["provenance"][0]["location"] == "Abstract"
