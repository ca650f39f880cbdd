"""Enter a generated study through the HTTP API, as a client would."""

from typing import Any

from litestar.testing import TestClient

from tests.oracle.studies import StudySpec

API = "/api/v1"


def _post(client: TestClient[Any], collection: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{API}/{collection}", json=body)
    assert response.status_code == 201, (collection, body, response.text)
    created: dict[str, Any] = response.json()
    return created


def load_study(client: TestClient[Any], spec: StudySpec) -> tuple[str, list[str]]:
    """The study id and its arm ids (creation order)."""
    study = _post(client, "studies", {"title": "Oracle study", "design": "case_series"})
    arms = [
        _post(client, "arms", {"study_id": study["id"], "label": f"Arm {i}"})["id"] for i in range(spec.arms)
    ]
    for p in spec.patients:
        patient: dict[str, Any] = {"study_id": study["id"], "subject_code": p.code, "diagnosis": "AML"}
        if p.arm is not None:
            patient["arm_id"] = arms[p.arm]
        if p.age is not None:
            patient["age_years"] = p.age
        pid = _post(client, "patients", patient)["id"]
        treatments: dict[str, str] = {}
        if p.study_treatment:
            start, end = p.study_treatment
            treatments["study"] = _post(
                client,
                "treatments",
                {
                    "patient_id": pid,
                    "phase": "induction",
                    "on_study": True,
                    "start_day": start,
                    "end_day": end,
                },
            )["id"]
        if p.salvage_start is not None:
            treatments["salvage"] = _post(
                client,
                "treatments",
                {"patient_id": pid, "phase": "salvage", "on_study": False, "start_day": p.salvage_start},
            )["id"]
        for a in p.assessments:
            body: dict[str, Any] = {"kind": "response", "patient_id": pid, "study_day": a.day}
            if a.category:
                body["category"] = a.category
            if a.possible:
                body["possible_categories"] = list(a.possible)
            if a.mrd:
                body["mrd_status"] = a.mrd
            if a.names and a.names in treatments:
                body["treatment_id"] = treatments[a.names]
            _post(client, "outcomes", body)
        for e in p.events:
            _post(
                client,
                "outcomes",
                {"kind": "event", "patient_id": pid, "event_type": e.kind, "study_day": e.day},
            )
    return study["id"], arms
