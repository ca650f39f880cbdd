"""Grants: a token limited to studies (and sites) sees nothing else anywhere, writes only inside
its curator grants, and an aggregate grant reads analyses but never a patient-level row."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from service.access.disclosure import COUNT_KEYS, COUNT_MAPS
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
    b2 = f.site(client, b["id"], code="B2", institution="Centre B2")  # no patients
    patients: dict[str, list[str]] = {"A1": [], "A2": [], "B1": []}
    codes: dict[str, str] = {}
    for site, study, n in ((a1, a, 3), (a2, a, 2), (b1, b, 2)):
        for i in range(n):
            p = f.patient(client, study["id"], subject_code=f"{site['code']}-{i}", site_id=site["id"])
            f.response(client, p["id"])
            f.adverse_event(client, p["id"])
            f.event(client, p["id"], event_type="last_follow_up", study_day=200 + i)
            patients[site["code"]].append(p["id"])
            codes[p["id"]] = p["subject_code"]
    f.create(
        client,
        "reported-results",
        {"study_id": b["id"], "measure": "CR rate", "value": 50, "unit": "%", "provenance": QUOTE},
    )
    return {"A": a, "B": b, "A1": a1, "A2": a2, "B1": b1, "B2": b2, "patients": patients, "codes": codes}


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
        secret = issue_token(database_url, f"t-{uuid.uuid4().hex[:12]}", role, grants=body or None)

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
    survival = get("GET", f"/studies/{a}/survival", params={"endpoint": "OS"})
    assert sum(g["n"] for g in survival.json()["groups"]) == 3
    # the analysis says what it was computed on
    assert survival.headers["analysis-scope"] == f"{a}=sites:{world['A1']['id']}"
    admin = world["as"]("admin")
    assert admin("GET", f"/studies/{a}/survival").headers["analysis-scope"] == "all"
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


GRANT = st.tuples(
    st.sampled_from(["A", "B"]),
    st.sampled_from(["curator", "reader", "aggregate"]),
    st.one_of(st.none(), st.sets(st.sampled_from(["1", "2"]), min_size=1).map(sorted)),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grants=st.lists(GRANT, min_size=1, max_size=3))
def test_nothing_outside_random_grants_appears_anywhere(world: Any, grants: list[Any]) -> None:
    """For random grants over study A (sites A1, A2) and B (sites B1, and B2 without patients):
    every list, total, analysis, evidence pool and export shows exactly what the grants open."""
    studies = {"A": world["A"]["id"], "B": world["B"]["id"]}
    patients_at = world["patients"]

    def open_patients(roles: set[str], study: str | None = None) -> set[str]:
        out: set[str] = set()
        for s, role, sites in grants:
            if role in roles and (study is None or s == study):
                for code in [f"{s}{n}" for n in (sites or ["1", "2"])]:
                    out |= set(patients_at.get(code, []))
        return out

    call = world["as"](
        None, *((s, role, [f"{s}{n}" for n in sites] if sites else None) for s, role, sites in grants)
    )
    granted = {studies[s] for s, _, _ in grants}
    readable = open_patients({"reader", "curator"})
    assert _ids(call("GET", "/studies")) == granted
    assert {s["study_id"] for s in call("GET", "/sites").json()["items"]} <= granted
    assert call("GET", "/reported-results").json()["total"] == (1 if studies["B"] in granted else 0)
    patients = call("GET", "/patients", params={"limit": 500})
    outcomes = call("GET", "/outcomes", params={"limit": 1})
    if any(role != "aggregate" for _, role, _ in grants):
        assert _ids(patients) == readable
        assert outcomes.json()["total"] == 2 * len(readable)
    else:
        assert patients.status_code == 403 and outcomes.status_code == 403
    evidence = call("GET", "/evidence/response-rates").json()
    assert {row["study_id"] for row in evidence["rows"]} <= granted
    reads_rows = any(role != "aggregate" for _, role, _ in grants)
    for name, study_id in studies.items():
        survival = call("GET", f"/studies/{study_id}/survival", params={"endpoint": "OS"})
        export = call("GET", f"/studies/{study_id}/export")
        # an identity reading no rows anywhere is refused an export before any study is looked at
        assert export.status_code != 403 if reads_rows else export.status_code == 403
        if study_id not in granted:
            assert survival.status_code == 404 and export.status_code in (403, 404)
            continue
        analysed = open_patients({"reader", "curator", "aggregate"}, name)
        rows = open_patients({"reader", "curator"}, name)
        body = survival.json()
        shown = sum(g["n"] for g in body["groups"])
        if body["disclosure"] is None:
            # every count shown without a disclosure is of patients the identity can read
            assert shown == len(analysed) and analysed == rows
        else:
            assert shown <= len(analysed)
            assert all(g["n"] == 0 or g["n"] >= 5 for g in body["groups"])
        if reads_rows:
            exported = {p["subject_code"] for p in export.json()["patients"]}
            assert exported == {world["codes"][i] for i in rows}


def test_an_aggregate_grant_sees_no_count_below_the_minimum(world: Any, client: TestClient[Any]) -> None:
    """Study A: arm X holds the 3 patients of A1, arm Y the 2 of A2 (groups below 5); each patient
    one response (CR) and an adverse event; 5 patients in all."""
    a = world["A"]["id"]
    arms = {code: f.arm(client, a, label=code)["id"] for code in ("X", "Y")}
    for code, arm in (("A1", "X"), ("A2", "Y")):
        for pid in world["patients"][code]:
            changed = client.patch(
                f"{API}/patients/{pid}",
                json={"arm_id": arms[arm]},
                headers={"If-Match": '"1"', "X-Change-Reason": "arm assigned"},
            )
            assert changed.status_code == 200, changed.text
    for pid in world["patients"]["A1"][:2]:
        f.event(client, pid, event_type="death", study_day=150)
    f.event(client, world["patients"]["A2"][0], event_type="relapse", study_day=None, timing_text="2024")
    aggregate = world["as"](None, ("A", "aggregate", None))
    reader = world["as"](None, ("A", "reader", None))
    for url, params in (
        (f"/studies/{a}/response-rates", {"group_by": "arm"}),
        (f"/studies/{a}/survival", {"endpoint": "OS", "group_by": "arm"}),
        (f"/studies/{a}/survival", {"endpoint": "RFS"}),
        (f"/studies/{a}/adverse-event-incidence", {}),
        (f"/studies/{a}/adverse-event-incidence", {"group_by": "arm"}),
        (f"/studies/{a}/cumulative-incidence", {}),
        (f"/studies/{a}/cumulative-incidence", {"group_by": "arm"}),
        (f"/studies/{a}/reconciliation", {}),
        (f"/studies/{a}/cox", {"endpoint": "OS", "covariates": "arm"}),
        ("/evidence/response-rates", {}),
        ("/evidence/adverse-event-incidence", {"term": "Neutropenia"}),
    ):
        shown = reader("GET", url, params=params)
        withheld = aggregate("GET", url, params=params)
        assert shown.status_code == withheld.status_code == 200, (url, withheld.text)
        assert shown.json().get("disclosure") is None  # a reader of every patient sees every count
        body = withheld.json()
        assert body["disclosure"]["minimum"] == 5, url

        def counts(node: Any) -> list[int]:
            found: list[int] = []
            if isinstance(node, dict):
                for key, value in node.items():
                    if key in COUNT_KEYS and type(value) is int:
                        found.append(value)
                    if key in COUNT_MAPS and isinstance(value, dict):
                        found += [v for v in value.values() if type(v) is int]
                    found += counts(value)
            elif isinstance(node, list):
                for item in node:
                    found += counts(item)
            return found

        assert all(v == 0 or v >= 5 for v in counts(body)), (url, body)
        if any(0 < v < 5 for v in counts(shown.json())):
            assert body["disclosure"]["withheld"], url
    groups = aggregate("GET", f"/studies/{a}/response-rates", params={"group_by": "arm"}).json()
    withheld_labels = {w["label"] for w in groups["disclosure"]["withheld"]}
    assert {"X", "Y"} <= withheld_labels and groups["groups"] == []
    assert groups["comparison"] is None and "/comparison" in {
        w["pointer"] for w in groups["disclosure"]["withheld"]
    }
    # a figure shows every event: refused to an aggregate grant, drawn for a reader
    assert aggregate("GET", f"/studies/{a}/survival/plot").status_code == 403
    assert reader("GET", f"/studies/{a}/survival/plot").status_code == 200


def test_the_minimum_can_be_turned_off(world: Any, database_url: str) -> None:
    from service.app import create_app
    from service.settings import Settings

    a = world["A"]["id"]
    secret = issue_token(
        database_url, f"agg-{uuid.uuid4().hex[:8]}", None, grants=[{"study_id": a, "role": "aggregate"}]
    )
    app = create_app(Settings(database_url=database_url, rate_limit_per_minute=0, aggregate_min_count=0))
    with TestClient(app) as plain:
        body = plain.get(
            f"{API}/studies/{a}/response-rates", headers={"Authorization": f"Bearer {secret}"}
        ).json()
    assert body["disclosure"] is None and body["groups"][0]["patients"] == 5
    # with the minimum off, an aggregate grant gets the figures too
    with TestClient(app) as plain:
        plot = plain.get(f"{API}/studies/{a}/survival/plot", headers={"Authorization": f"Bearer {secret}"})
    assert plot.status_code == 200 and plot.headers["content-type"].startswith("image/svg")
