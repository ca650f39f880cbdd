from typing import Any

from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"


def test_patient_round_trip_with_labs_genetics_and_markers(client: TestClient[Any]) -> None:
    study = f.study(client)
    body = {
        "study_id": study["id"],
        "subject_code": "case-1",
        "diagnosis": "T-ALL",
        "diagnosis_subtype": "non-ETP",
        "disease_status": "cr_mrd_positive",
        "age_years": 60,
        "sex": "female",
        "ecog": 1,
        "wbc_10e9_per_l": 2.61,
        "genetic_findings": ["STAT5B"],
        "markers": [{"marker": "CD38", "percent_positive": 95, "sample": "bone_marrow"}],
    }
    created = f.create(client, "patients", body)
    read = client.get(f"{API}/patients/{created['id']}").json()
    assert read["markers"] == [
        {"marker": "CD38", "percent_positive": 95.0, "status": None, "sample": "bone_marrow"}
    ]
    assert read["genetic_findings"] == ["STAT5B"]
    assert read["age_years"] == 60


def test_schema_has_no_identifying_fields(client: TestClient[Any]) -> None:
    study = f.study(client)
    for field in ("name", "mrn", "medical_record_number", "birth_date", "date_of_birth"):
        response = client.post(
            f"{API}/patients",
            json={"study_id": study["id"], "subject_code": "x", "diagnosis": "AML", field: "x"},
        )
        assert response.status_code == 400, field
    assert client.get(f"{API}/patients").json()["total"] == 0


def test_subject_code_is_unique_within_a_study(client: TestClient[Any]) -> None:
    first, second = f.study(client), f.study(client)
    f.patient(client, first["id"], subject_code="P1")
    duplicate = client.post(
        f"{API}/patients", json={"study_id": first["id"], "subject_code": "P1", "diagnosis": "AML"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["errors"][0]["field"] == "subject_code"
    assert f.patient(client, second["id"], subject_code="P1")["subject_code"] == "P1"


def test_arm_must_belong_to_the_patients_study(client: TestClient[Any]) -> None:
    first, second = f.study(client), f.study(client)
    other_arm = f.arm(client, second["id"])
    response = client.post(
        f"{API}/patients",
        json={"study_id": first["id"], "subject_code": "P1", "diagnosis": "AML", "arm_id": other_arm["id"]},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "arm_id"
    patient = f.patient(client, first["id"])
    moved = client.patch(f"{API}/patients/{patient['id']}", json={"arm_id": other_arm["id"]})
    assert moved.status_code == 422
    assert client.get(f"{API}/patients/{patient['id']}").json()["arm_id"] is None


def test_unknown_study_is_422_naming_the_field(client: TestClient[Any]) -> None:
    response = client.post(
        f"{API}/patients",
        json={"study_id": "0190a5b0-0000-7000-8000-000000000000", "subject_code": "P", "diagnosis": "AML"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "study_id"


def test_filters(client: TestClient[Any]) -> None:
    study = f.study(client)
    arm = f.arm(client, study["id"])
    f.patient(
        client, study["id"], subject_code="a", age_years=18, sex="male", diagnosis="B-ALL", arm_id=arm["id"]
    )
    f.patient(client, study["id"], subject_code="b", age_years=52, sex="female", diagnosis="B-ALL")
    f.patient(client, study["id"], subject_code="c", age_years=74, sex="female", diagnosis="T-ALL")

    def codes(**params: Any) -> list[str]:
        return [p["subject_code"] for p in client.get(f"{API}/patients", params=params).json()["items"]]

    assert codes(diagnosis="B-ALL") == ["a", "b"]
    assert codes(sex="female", age_min=50, age_max=60) == ["b"]
    assert codes(arm_id=arm["id"]) == ["a"]
    assert codes(sort="-age_years") == ["c", "b", "a"]
    assert codes(study_id=study["id"], limit=1, offset=2) == ["c"]


def test_delete_patient_cascades_only_when_asked(client: TestClient[Any]) -> None:
    study = f.study(client)
    patient = f.patient(client, study["id"])
    agent = f.agent(client)
    treatment = f.treatment(client, patient["id"], components=[{"agent_id": agent["id"]}])
    f.adverse_event(client, patient["id"], treatment_id=treatment["id"])
    assert client.delete(f"{API}/patients/{patient['id']}").status_code == 409
    assert client.delete(f"{API}/patients/{patient['id']}?cascade=true").status_code == 204
    assert client.get(f"{API}/treatments/{treatment['id']}").status_code == 404
    assert client.get(f"{API}/agents/{agent['id']}").status_code == 200
