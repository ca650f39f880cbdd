"""Sites: the centres of a study, named by a code unique in it; patients carry their site."""

from typing import Any

from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"


def test_site_round_trip_filter_and_history(client: TestClient[Any]) -> None:
    study = f.study(client)
    site = f.site(client, study["id"], city="Lyon", country="France", ctgov_facility_id="F-12")
    other = f.site(client, f.study(client)["id"], code="B1", country="Spain")
    assert client.get(f"{API}/sites/{site['id']}").json()["city"] == "Lyon"
    listed = client.get(f"{API}/sites", params={"study_id": study["id"]}).json()
    assert [s["id"] for s in listed["items"]] == [site["id"]]
    assert [s["id"] for s in client.get(f"{API}/sites", params={"country": "Spain"}).json()["items"]] == [
        other["id"]
    ]
    changed = client.patch(
        f"{API}/sites/{site['id']}", json={"city": "Paris"}, headers={"If-Match": f'"{site["version"]}"'}
    )
    assert changed.status_code == 200 and changed.json()["city"] == "Paris"
    history = client.get(f"{API}/sites/{site['id']}/history").json()["items"]
    assert [h["action"] for h in history] == ["create", "update"]


def test_a_site_code_is_unique_in_its_study_whatever_the_case(client: TestClient[Any]) -> None:
    study = f.study(client)
    f.site(client, study["id"], code="A1")
    again = client.post(f"{API}/sites", json={"study_id": study["id"], "code": "a1", "institution": "X"})
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "code"
    assert f.site(client, f.study(client)["id"], code="A1")["code"] == "A1"  # another study may


def test_a_patient_site_must_be_of_the_patients_study(client: TestClient[Any]) -> None:
    first, second = f.study(client), f.study(client)
    elsewhere = f.site(client, second["id"])
    response = client.post(
        f"{API}/patients",
        json={"study_id": first["id"], "subject_code": "P1", "diagnosis": "AML", "site_id": elsewhere["id"]},
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "site_id"
    missing = client.post(
        f"{API}/patients",
        json={"study_id": first["id"], "subject_code": "P1", "diagnosis": "AML", "site_id": second["id"]},
    )
    assert missing.status_code == 422
    assert client.get(f"{API}/patients").json()["total"] == 0


def test_patients_filter_by_site_and_a_site_with_patients_is_kept(client: TestClient[Any]) -> None:
    study = f.study(client)
    a1, b1 = f.site(client, study["id"]), f.site(client, study["id"], code="B1")
    patient = f.patient(client, study["id"], site_id=a1["id"])
    f.patient(client, study["id"], subject_code="P2", site_id=b1["id"])
    at_a1 = client.get(f"{API}/patients", params={"site_id": a1["id"]}).json()["items"]
    assert [p["id"] for p in at_a1] == [patient["id"]] and at_a1[0]["site_id"] == a1["id"]
    refused = client.delete(f"{API}/sites/{a1['id']}", headers={"If-Match": f'"{a1["version"]}"'})
    assert refused.status_code == 409 and "patients" in refused.json()["detail"]
    # a study's cascade takes its sites with it
    gone = client.delete(
        f"{API}/studies/{study['id']}", params={"cascade": "true"}, headers={"If-Match": '"1"'}
    )
    assert gone.status_code == 204
    assert client.get(f"{API}/sites/{a1['id']}").status_code == 404
    assert client.get(f"{API}/sites", params={"study_id": study["id"]}).json()["total"] == 0
