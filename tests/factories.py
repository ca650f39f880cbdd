"""Small helpers that create records through the API, so tests read like specs."""

from typing import Any

from litestar.testing import TestClient

API = "/api/v1"


def create(client: TestClient[Any], collection: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{API}/{collection}", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def study(client: TestClient[Any], **fields: Any) -> dict[str, Any]:
    return create(client, "studies", {"title": "A study", "design": "case_series", **fields})


def arm(client: TestClient[Any], study_id: str, **fields: Any) -> dict[str, Any]:
    return create(client, "arms", {"study_id": study_id, "label": "Arm A", **fields})


def patient(client: TestClient[Any], study_id: str, **fields: Any) -> dict[str, Any]:
    return create(
        client, "patients", {"study_id": study_id, "subject_code": "P1", "diagnosis": "B-ALL", **fields}
    )


def agent(client: TestClient[Any], **fields: Any) -> dict[str, Any]:
    return create(client, "agents", {"name": "venetoclax", "targets": ["BCL-2"], **fields})


def treatment(client: TestClient[Any], patient_id: str, **fields: Any) -> dict[str, Any]:
    return create(client, "treatments", {"patient_id": patient_id, "phase": "induction", **fields})


def adverse_event(client: TestClient[Any], patient_id: str, **fields: Any) -> dict[str, Any]:
    return create(
        client, "adverse-events", {"patient_id": patient_id, "term": "Neutropenia", "grade": 3, **fields}
    )


def response(client: TestClient[Any], patient_id: str, **fields: Any) -> dict[str, Any]:
    return create(
        client,
        "outcomes",
        {"kind": "response", "patient_id": patient_id, "study_day": 28, "category": "CR", **fields},
    )


def event(client: TestClient[Any], patient_id: str, **fields: Any) -> dict[str, Any]:
    return create(
        client,
        "outcomes",
        {"kind": "event", "patient_id": patient_id, "study_day": 100, "event_type": "relapse", **fields},
    )


def site(client: TestClient[Any], study_id: str, **fields: Any) -> dict[str, Any]:
    return create(client, "sites", {"study_id": study_id, "code": "A1", "institution": "Centre A", **fields})


def one_of_each(client: TestClient[Any], agent: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(collection, created body) of one record of each kind a study holds, two kinds of outcome,
    the arm and the treatment naming `agent`."""
    study_ = study(client)
    arm_ = arm(client, study_["id"], agent_ids=[agent["id"]])
    site_ = site(client, study_["id"])
    patient_ = patient(
        client,
        study_["id"],
        arm_id=arm_["id"],
        site_id=site_["id"],
        genetic_findings=["NOTCH1 mutation"],
        markers=[{"marker": "CD38", "percent_positive": 92.5}],
        age_years=34.5,
    )
    return [
        ("studies", study_),
        ("arms", arm_),
        ("sites", site_),
        ("patients", patient_),
        ("treatments", treatment(client, patient_["id"], components=[{"agent_id": agent["id"]}])),
        ("adverse-events", adverse_event(client, patient_["id"], grade=3)),
        ("outcomes", response(client, patient_["id"])),
        ("outcomes", event(client, patient_["id"])),
    ]
