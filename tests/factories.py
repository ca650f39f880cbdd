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
