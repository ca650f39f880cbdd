from typing import Any

from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"


def _patient(client: TestClient[Any]) -> dict[str, Any]:
    return f.patient(client, f.study(client)["id"])


def test_components_round_trip_and_replace(client: TestClient[Any]) -> None:
    patient = _patient(client)
    ven, dara = f.agent(client), f.agent(client, name="daratumumab", targets=["CD38"])
    treatment = f.treatment(
        client,
        patient["id"],
        phase="salvage",
        regimen="Dara-Ven-Cy-Clo",
        start_day=1,
        end_day=10,
        components=[
            {"agent_id": ven["id"], "dose": 100, "dose_unit": "mg", "route": "PO", "schedule": "days 3-7"},
            {"agent_id": dara["id"], "dose": 16, "dose_unit": "mg/kg", "schedule": "days 2 and 10"},
        ],
    )
    assert [c["agent_id"] for c in treatment["components"]] == [ven["id"], dara["id"]]
    patched = client.patch(
        f"{API}/treatments/{treatment['id']}", json={"components": [{"agent_id": dara["id"]}]}
    )
    assert patched.status_code == 200
    assert [c["agent_id"] for c in patched.json()["components"]] == [dara["id"]]
    untouched = client.patch(f"{API}/treatments/{treatment['id']}", json={"regimen": "Dara"})
    assert [c["agent_id"] for c in untouched.json()["components"]] == [dara["id"]]


def test_unknown_agent_is_422_and_stores_nothing(client: TestClient[Any]) -> None:
    patient = _patient(client)
    response = client.post(
        f"{API}/treatments",
        json={
            "patient_id": patient["id"],
            "phase": "induction",
            "components": [{"agent_id": "0190a5b0-0000-7000-8000-000000000000"}],
        },
    )
    assert response.status_code == 422
    assert client.get(f"{API}/treatments").json()["total"] == 0


def test_study_day_rules(client: TestClient[Any]) -> None:
    patient = _patient(client)
    day_zero = client.post(
        f"{API}/treatments", json={"patient_id": patient["id"], "phase": "induction", "start_day": 0}
    )
    assert day_zero.status_code == 422
    assert day_zero.json()["errors"][0]["field"] == "start_day"
    backwards = client.post(
        f"{API}/treatments",
        json={"patient_id": patient["id"], "phase": "induction", "start_day": 10, "end_day": 5},
    )
    assert backwards.status_code == 422
    before_day_one = f.treatment(client, patient["id"], phase="induction", start_day=-60, end_day=-30)
    assert before_day_one["start_day"] == -60


def test_filter_by_agent_phase_and_study(client: TestClient[Any]) -> None:
    patient = _patient(client)
    ven = f.agent(client)
    f.treatment(client, patient["id"], phase="induction", components=[{"agent_id": ven["id"]}])
    f.treatment(client, patient["id"], phase="hsct")
    other = _patient(client)
    f.treatment(client, other["id"], phase="induction")
    assert client.get(f"{API}/treatments", params={"agent": "Venetoclax"}).json()["total"] == 1
    assert client.get(f"{API}/treatments", params={"phase": "induction"}).json()["total"] == 2
    assert client.get(f"{API}/treatments", params={"study_id": patient["study_id"]}).json()["total"] == 2


def test_delete_with_adverse_events_unlinks_them_on_cascade(client: TestClient[Any]) -> None:
    patient = _patient(client)
    treatment = f.treatment(client, patient["id"])
    event = f.adverse_event(client, patient["id"], treatment_id=treatment["id"])
    assert client.delete(f"{API}/treatments/{treatment['id']}").status_code == 409
    assert client.get(f"{API}/treatments/{treatment['id']}").json()["components"] == []
    assert client.delete(f"{API}/treatments/{treatment['id']}", params={"cascade": True}).status_code == 204
    assert client.get(f"{API}/adverse-events/{event['id']}").json()["treatment_id"] is None


def test_agent_in_use_cannot_be_deleted(client: TestClient[Any]) -> None:
    patient = _patient(client)
    ven = f.agent(client)
    f.treatment(client, patient["id"], components=[{"agent_id": ven["id"]}])
    assert client.delete(f"{API}/agents/{ven['id']}").status_code == 409
    unused = f.agent(client, name="unused")
    assert client.delete(f"{API}/agents/{unused['id']}").status_code == 204


def test_agent_names_are_unique_in_any_case(client: TestClient[Any]) -> None:
    f.agent(client)
    assert client.post(f"{API}/agents", json={"name": "VENETOCLAX"}).status_code == 409
    assert client.get(f"{API}/agents", params={"target": "bcl-2"}).json()["total"] == 1
