"""Grants: a token limited to studies (and sites) sees nothing else anywhere, writes only inside
its curator grants, and an aggregate grant reads analyses but never a patient-level row."""

from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient

from tests import factories as f
from tests.databases import issue_token

API = "/api/v1"
QUOTE = [{"source_document": "paper.txt", "location": "Table 1", "quote": "CR rate 50%"}]


def _data(client: TestClient[Any]) -> dict[str, Any]:
    """Study A with sites A1 (3 patients) and A2 (2), study B (2 patients); each patient has a
    response, an adverse event and a last follow-up."""
    a, b = f.study(client, title="Study A"), f.study(client, title="Study B")
    a1, a2 = f.site(client, a["id"], code="A1"), f.site(client, a["id"], code="A2")
    b1 = f.site(client, b["id"], code="B1", institution="Centre B")
    patients: dict[str, list[str]] = {"A1": [], "A2": [], "B1": []}
    for site, study, n in ((a1, a, 3), (a2, a, 2), (b1, b, 2)):
        for i in range(n):
            p = f.patient(client, study["id"], subject_code=f"{site['code']}-{i}", site_id=site["id"])
            f.response(client, p["id"])
            f.adverse_event(client, p["id"])
            f.event(client, p["id"], event_type="last_follow_up", study_day=200 + i)
            patients[site["code"]].append(p["id"])
    f.create(
        client,
        "reported-results",
        {"study_id": b["id"], "measure": "CR rate", "value": 50, "unit": "%", "provenance": QUOTE},
    )
    return {"A": a, "B": b, "A1": a1, "A2": a2, "B1": b1, "patients": patients}


@pytest.fixture
def world(client: TestClient[Any], database_url: str) -> Any:
    data = _data(client)

    def as_(role: str | None = None, *grants: tuple[str, str, list[str] | None]) -> Callable[..., Any]:
        body = [
            {
                "study_id": data[s]["id"],
                "role": r,
                **({"sites": [data[x]["id"] for x in sites]} if sites else {}),
            }
            for s, r, sites in grants
        ]
        secret = issue_token(database_url, f"t-{len(body)}-{id(body)}", role, grants=body or None)

        def call(method: str, url: str, **kwargs: Any) -> Any:
            headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {secret}"}
            return client.request(method, f"{API}{url}", headers=headers, **kwargs)

        return call

    data["as"] = as_
    return data


def _ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def test_a_study_reader_sees_nothing_of_another_study(world: Any) -> None:
    get = world["as"](None, ("A", "reader", None))
    a, b = world["A"]["id"], world["B"]["id"]
    assert _ids(get("GET", "/studies")) == {a}
    assert get("GET", "/studies", params={"limit": 1}).json()["total"] == 1
    assert len(_ids(get("GET", "/patients", params={"limit": 500}))) == 5
    assert get("GET", "/outcomes", params={"limit": 1}).json()["total"] == 10
    assert get("GET", "/adverse-events", params={"limit": 1}).json()["total"] == 5
    assert _ids(get("GET", "/sites")) == {world["A1"]["id"], world["A2"]["id"]}
    assert get("GET", "/reported-results").json()["total"] == 0
    b_patient = world["patients"]["B1"][0]
    for url in (
        f"/studies/{b}",
        f"/patients/{b_patient}",
        f"/sites/{world['B1']['id']}",
        f"/studies/{b}/survival",
        f"/studies/{b}/response-rates",
        f"/studies/{b}/time-to-event",
        f"/studies/{b}/export",
        f"/studies/{b}/reconciliation",
    ):
        assert get("GET", url).status_code == 404, url
    assert get("GET", f"/studies/{a}/survival").status_code == 200
    # the evidence pools only what it may see
    pooled = get("GET", "/evidence/response-rates")
    assert pooled.status_code == 200, pooled.text
    assert {row["study_id"] for row in pooled.json()["rows"]} == {a}
    admin_pooled = world["as"]("admin")("GET", "/evidence/response-rates").json()
    assert {row["study_id"] for row in admin_pooled["rows"]} == {a, b}
    assert get("GET", "/audit").status_code == 403
    # a reader grant writes nothing
    assert (
        get("POST", "/patients", json={"study_id": a, "subject_code": "X", "diagnosis": "AML"}).status_code
        == 403
    )


def test_a_site_reader_sees_its_sites_patients_only(world: Any) -> None:
    get = world["as"](None, ("A", "reader", ["A1"]))
    a = world["A"]["id"]
    assert _ids(get("GET", "/patients", params={"limit": 500})) == set(world["patients"]["A1"])
    assert get("GET", "/outcomes", params={"limit": 1}).json()["total"] == 6
    assert get("GET", f"/patients/{world['patients']['A2'][0]}").status_code == 404
    response = get("GET", f"/studies/{a}/time-to-event", params={"endpoint": "OS"})
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert {r["subject_code"] for r in rows} == {"A1-0", "A1-1", "A1-2"}
    survival = get("GET", f"/studies/{a}/survival", params={"endpoint": "OS"}).json()
    assert sum(g["n"] for g in survival["groups"]) == 3
    exported = get("GET", f"/studies/{a}/export").json()
    assert sorted(p["subject_code"] for p in exported["patients"]) == ["A1-0", "A1-1", "A1-2"]


def test_an_aggregate_grant_reads_analyses_and_no_patient_row(world: Any) -> None:
    get = world["as"](None, ("A", "aggregate", None))
    a = world["A"]["id"]
    assert get("GET", f"/studies/{a}").status_code == 200
    survival = get("GET", f"/studies/{a}/survival", params={"endpoint": "OS"})
    assert survival.status_code == 200 and sum(g["n"] for g in survival.json()["groups"]) == 5
    assert get("GET", f"/studies/{a}/response-rates").status_code == 200
    for url in (
        "/patients",
        f"/patients/{world['patients']['A1'][0]}",
        "/outcomes",
        "/adverse-events",
        "/treatments",
        "/patient-links",
        "/patients/possible-duplicates",
        f"/studies/{a}/time-to-event",
        f"/studies/{a}/swimmer-plot",
        f"/studies/{a}/export",
    ):
        response = get("GET", url)
        assert response.status_code == 403, url
        assert response.headers["content-type"].startswith("application/problem+json")


def test_a_site_curator_writes_only_its_sites_patients(world: Any) -> None:
    call = world["as"](None, ("A", "curator", ["A1"]), ("B", "reader", None))
    a, b = world["A"]["id"], world["B"]["id"]
    body = {"study_id": a, "subject_code": "new", "diagnosis": "AML"}
    assert call("POST", "/patients", json={**body, "site_id": world["A1"]["id"]}).status_code == 201
    assert (
        call(
            "POST", "/patients", json={**body, "subject_code": "n2", "site_id": world["A2"]["id"]}
        ).status_code
        == 403
    )
    assert call("POST", "/patients", json={**body, "subject_code": "n3"}).status_code == 403  # no site
    assert (
        call("POST", "/patients", json={**body, "study_id": b, "site_id": world["B1"]["id"]}).status_code
        == 403
    )
    mine = world["patients"]["A1"][0]
    moved = call(
        "PATCH",
        f"/patients/{mine}",
        json={"site_id": world["A2"]["id"]},
        headers={"If-Match": '"1"', "X-Change-Reason": "moved"},
    )
    assert moved.status_code == 403  # may not move a patient out of its sites
    assert (
        call("POST", "/adverse-events", json={"patient_id": mine, "term": "Fever", "grade": 1}).status_code
        == 201
    )
    theirs = world["patients"]["A2"][0]
    # A2's patients do not exist for it: a reference to one is unknown
    assert (
        call("POST", "/adverse-events", json={"patient_id": theirs, "term": "Fever", "grade": 1}).status_code
        == 422
    )
    # study-level records are a whole-study curator's
    assert call("POST", "/arms", json={"study_id": a, "label": "X"}).status_code == 403
    assert call("POST", "/studies", json={"title": "New", "design": "other"}).status_code == 403
    assert call("POST", "/agents", json={"name": "newdrug"}).status_code == 403


def test_a_study_curator_changes_its_study_and_nothing_else(world: Any) -> None:
    call = world["as"](None, ("A", "curator", None))
    a, b = world["A"]["id"], world["B"]["id"]
    assert call("POST", "/arms", json={"study_id": a, "label": "X"}).status_code == 201
    assert (
        call("POST", "/arms", json={"study_id": b, "label": "X"}).status_code == 422
    )  # B does not exist for it
    assert (
        call("PATCH", f"/studies/{a}", json={"summary": "s"}, headers={"If-Match": '"1"'}).status_code == 200
    )
    assert (
        call("PATCH", f"/studies/{b}", json={"summary": "s"}, headers={"If-Match": '"1"'}).status_code == 404
    )
    assert call("GET", f"/studies/{a}/history").status_code == 200
    assert call("GET", f"/studies/{b}/history").status_code == 404
    assert call("POST", "/studies/import", json={}).status_code == 403


def test_tokens_with_grants_through_the_api(world: Any, client: TestClient[Any]) -> None:
    a = world["A"]["id"]
    made = client.post(
        f"{API}/tokens",
        json={
            "name": "centre-a1",
            "grants": [{"study_id": a, "role": "reader", "sites": [world["A1"]["id"]]}],
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["role"] is None and made.json()["grants"][0]["sites"] == [world["A1"]["id"]]
    secret = made.json()["token"]
    listed = client.get(
        f"{API}/patients", params={"limit": 500}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert _ids(listed) == set(world["patients"]["A1"])
    both = client.post(
        f"{API}/tokens", json={"name": "x", "role": "reader", "grants": [{"study_id": a, "role": "reader"}]}
    )
    assert both.status_code == 422
    neither = client.post(f"{API}/tokens", json={"name": "y"})
    assert neither.status_code == 422
    wrong_site = client.post(
        f"{API}/tokens",
        json={"name": "z", "grants": [{"study_id": a, "role": "reader", "sites": [world["B1"]["id"]]}]},
    )
    assert wrong_site.status_code == 422 and "not a site of study" in wrong_site.json()["detail"]
    unknown = client.post(
        f"{API}/tokens", json={"name": "w", "grants": [{"study_id": world["B1"]["id"], "role": "curator"}]}
    )
    assert unknown.status_code == 422
