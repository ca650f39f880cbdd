from typing import Any

from litestar.testing import TestClient

from tests import factories as f

API = "/api/v1"


def test_create_returns_201_with_location_and_server_fields(client: TestClient[Any]) -> None:
    response = client.post(
        f"{API}/studies", json={"title": "T", "design": "case_report", "start_date": "2024-04"}
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"{API}/studies/{body['id']}"
    assert body["version"] == 1 and body["start_date"] == "2024-04"
    assert body["created_at"].endswith(("+00:00", "Z"))
    # Reads and pages come from result rows (SQLite hands back times without their offset).
    read = client.get(response.headers["location"]).json()
    listed = client.get(f"{API}/studies", params={"limit": 500}).json()["items"]
    for record in (read, next(s for s in listed if s["id"] == body["id"])):
        assert record["created_at"] == body["created_at"] and record["updated_at"].endswith(("+00:00", "Z"))


def test_read_patch_delete(client: TestClient[Any]) -> None:
    study = f.study(client, conditions=["T-ALL"], sponsor="Hospital")
    patched = client.patch(
        f"{API}/studies/{study['id']}", json={"overall_status": "RECRUITING", "sponsor": None}
    )
    assert patched.status_code == 200
    assert patched.json()["overall_status"] == "RECRUITING"
    assert patched.json()["sponsor"] is None
    assert patched.json()["conditions"] == ["T-ALL"]
    assert patched.json()["version"] == 2
    assert client.delete(f"{API}/studies/{study['id']}").status_code == 204
    assert client.get(f"{API}/studies/{study['id']}").status_code == 404


def test_patch_cannot_null_a_required_field(client: TestClient[Any]) -> None:
    study = f.study(client)
    response = client.patch(f"{API}/studies/{study['id']}", json={"title": None})
    assert response.status_code == 400
    assert client.get(f"{API}/studies/{study['id']}").json()["title"] == "A study"


def test_registry_identifier_format_is_validated(client: TestClient[Any]) -> None:
    response = client.post(
        f"{API}/studies", json={"title": "T", "design": "other", "registry_ids": ["NCT123"]}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (
        f.study(client, registry_ids=["NCT04351022", "ChiCTR2000012345"])["registry_ids"][0] == "NCT04351022"
    )


def test_partial_dates_are_checked_against_the_calendar_and_order(client: TestClient[Any]) -> None:
    bad_day = client.post(
        f"{API}/studies", json={"title": "T", "design": "other", "start_date": "2024-02-30"}
    )
    assert bad_day.status_code == 422
    assert bad_day.json()["errors"][0]["field"] == "start_date"
    reversed_ = client.post(
        f"{API}/studies", json={"title": "T", "design": "other", "start_date": "2025", "end_date": "2024-12"}
    )
    assert reversed_.status_code == 422
    assert client.get(f"{API}/studies").json()["total"] == 0


def test_list_paging_link_header_and_creation_order(client: TestClient[Any]) -> None:
    ids = [f.study(client, title=f"S{i}")["id"] for i in range(5)]
    first = client.get(f"{API}/studies", params={"limit": 2})
    assert first.json()["total"] == 5
    assert [s["id"] for s in first.json()["items"]] == ids[:2]
    assert 'rel="next"' in first.headers["link"]
    assert "offset=2" in first.headers["link"]
    last = client.get(f"{API}/studies", params={"limit": 2, "offset": 4})
    assert [s["id"] for s in last.json()["items"]] == ids[4:]
    assert "link" not in last.headers
    descending = client.get(f"{API}/studies", params={"sort": "-created"}).json()["items"]
    assert [s["id"] for s in descending] == ids[::-1]


def test_list_limit_bounds(client: TestClient[Any]) -> None:
    assert client.get(f"{API}/studies", params={"limit": 501}).status_code == 400
    assert client.get(f"{API}/studies", params={"limit": 0}).status_code == 400
    assert client.get(f"{API}/studies", params={"sort": "nonsense"}).status_code == 400


def test_filters_by_design_condition_and_agent(client: TestClient[Any]) -> None:
    ven = f.agent(client)
    trial = f.study(
        client, title="Trial", design="single_arm_trial", conditions=["T-cell acute lymphoblastic leukemia"]
    )
    f.arm(client, trial["id"], agent_ids=[ven["id"]])
    report = f.study(client, title="Report", design="case_report", conditions=["B-ALL"])
    patient = f.patient(client, report["id"])
    f.treatment(client, patient["id"], components=[{"agent_id": ven["id"]}])
    f.study(client, title="Other", design="case_report")

    def titles(**params: Any) -> list[str]:
        return [s["title"] for s in client.get(f"{API}/studies", params=params).json()["items"]]

    assert titles(design="case_report") == ["Report", "Other"]
    assert titles(condition="lymphoblastic") == ["Trial"]
    assert titles(agent="VENETOCLAX") == ["Trial", "Report"]
    assert titles(agent="daratumumab") == []


def test_delete_with_dependants_needs_cascade(client: TestClient[Any]) -> None:
    study = f.study(client)
    arm = f.arm(client, study["id"])
    patient = f.patient(client, study["id"], arm_id=arm["id"])
    f.adverse_event(client, patient["id"])
    f.response(client, patient["id"])
    refused = client.delete(f"{API}/studies/{study['id']}")
    assert refused.status_code == 409
    assert "cascade=true" in refused.json()["detail"]
    assert client.get(f"{API}/patients/{patient['id']}").status_code == 200
    assert client.delete(f"{API}/studies/{study['id']}", params={"cascade": "true"}).status_code == 204
    assert client.get(f"{API}/patients/{patient['id']}").status_code == 404
    assert client.get(f"{API}/adverse-events").json()["total"] == 0
    assert client.get(f"{API}/outcomes").json()["total"] == 0
    assert client.get(f"{API}/arms").json()["total"] == 0
