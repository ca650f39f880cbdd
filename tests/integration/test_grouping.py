"""Analyses by any grouping, through the API on both databases, against R
(tests/fixtures/r/grouping.R): log-rank by sex, age band and diagnosis; the landmark method by
MRD and response status at the landmark, time restarted or kept with delayed entry. Then the same
groupings on response rates, adverse-event incidence and cumulative incidence, and the requests
that cannot be answered."""

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from service.analytics.estimands.groups import MAX_LEVELS
from service.analytics.survival.analysis import LANDMARK_EXCLUSION
from tests import factories as f
from tests.conftest import emptied

API = "/api/v1"
R = json.loads((Path(__file__).parents[1] / "fixtures/r/grouping.json").read_text())
DATA = R["data"]
N = len(DATA["time"])


def _cohort(client: TestClient[Any]) -> str:
    s = f.study(client)
    by_patient: dict[int, list[dict[str, Any]]] = {}
    for a in DATA["assessments"]:
        by_patient.setdefault(a["patient"], []).append(a)
    for i in range(N):
        fields = {"diagnosis": DATA["diagnosis"][i]}
        if DATA["sex"][i] is not None:
            fields["sex"] = DATA["sex"][i]
        if DATA["age"][i] is not None:
            fields["age_years"] = DATA["age"][i]
        p = f.patient(client, s["id"], subject_code=f"G{i:03d}", **fields)
        for a in by_patient.get(i, []):
            f.response(client, p["id"], study_day=a["day"], category=a["category"], mrd_status=a["mrd"])
        f.event(
            client,
            p["id"],
            event_type="death" if DATA["event"][i] else "last_follow_up",
            study_day=1 + DATA["time"][i],
        )
    return str(s["id"])


@pytest.fixture(scope="module")
def built_cohorts() -> dict[str, str]:
    """database URL -> the id of the R cohort's study built on it, for this module."""
    return {}


@pytest.fixture
def cohort(session_client: TestClient[Any], database_url: str, built_cohorts: dict[str, str]) -> str:
    """The R cohort, built once per database for the tests that only read it (it takes a few
    hundred writes); those tests use `session_client`, as `client` would empty the tables. It is
    built again when a test taking `client` has emptied the tables since: with `--dist worksteal`
    a worker may run this module's tests out of file order (a reader stolen from the other
    worker after a test that empties), so the cohort is looked up before each reader."""
    study_id = built_cohorts.get(database_url)
    if study_id is None or session_client.get(f"{API}/studies/{study_id}").status_code == 404:
        study_id = built_cohorts[database_url] = _cohort(emptied(session_client, database_url))
    return study_id


def _survival(client: TestClient[Any], study_id: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"{API}/studies/{study_id}/survival", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("params", "expected", "reason"),
    [
        ({"group_by": "sex"}, R["by_sex"], "no sex recorded: left out of the comparison by sex"),
        (
            {"group_by": "age", "age_cuts": "18,40,60"},
            R["by_age"],
            "no age recorded: left out of the comparison by age",
        ),
        ({"group_by": "diagnosis"}, R["by_diagnosis"], None),
    ],
)
def test_log_rank_by_a_patient_attribute_equals_survdiff(
    session_client: TestClient[Any],
    cohort: str,
    params: dict[str, str],
    expected: dict[str, Any],
    reason: str | None,
) -> None:
    body = _survival(session_client, cohort, **params)
    assert body["log_rank"]["chi_square"] == pytest.approx(expected["chisq"], abs=1e-8)
    assert body["log_rank"]["p_value"] == pytest.approx(expected["p"], abs=1e-8)
    assert body["log_rank"]["df"] == expected["df"]
    assert sorted(g["n"] for g in body["groups"] if g["n"]) == sorted(expected["n"])
    if reason:
        assert body["excluded_by_reason"] == {reason: expected["left_out"]}
    else:
        assert body["excluded_by_reason"] == {}
    assert body["method"]["groups"]


def test_age_bands_are_every_band_in_order_with_their_bounds(
    session_client: TestClient[Any], cohort: str
) -> None:
    body = _survival(session_client, cohort, group_by="age", age_cuts="18,40,60")
    assert [g["group"]["key"] for g in body["groups"]] == ["age<18", "18<=age<40", "40<=age<60", "age>=60"]
    # a band includes its lower bound
    ages = [a for a in DATA["age"] if a is not None]
    assert [g["n"] for g in body["groups"]] == [
        sum(a < 18 for a in ages),
        sum(18 <= a < 40 for a in ages),
        sum(40 <= a < 60 for a in ages),
        sum(a >= 60 for a in ages),
    ]


@pytest.mark.parametrize("landmark", R["landmarks"], ids=lambda lm: lm["kind"])
@pytest.mark.parametrize("landmark_time", ["from_landmark", "from_origin"])
def test_landmark_by_status_equals_r(
    session_client: TestClient[Any], cohort: str, landmark: dict[str, Any], landmark_time: str
) -> None:
    group_by = f"{landmark['kind']}_at_landmark"
    body = _survival(
        session_client,
        cohort,
        group_by=group_by,
        landmark_day=landmark["landmark"],
        landmark_time=landmark_time,
    )
    assert body["log_rank"]["chi_square"] == pytest.approx(landmark["test"]["chisq"], abs=1e-8)
    assert body["log_rank"]["p_value"] == pytest.approx(landmark["test"]["p"], abs=1e-8)
    assert sum(g["n"] for g in body["groups"]) == landmark["in_analysis"]
    reasons = body["excluded_by_reason"]
    not_assessed = "no assessment by the landmark: left out of the comparison by status at the landmark"
    assert reasons[not_assessed] == landmark["without_status"]
    assert reasons[not_assessed] + reasons[LANDMARK_EXCLUSION] == N - landmark["in_analysis"]
    fits = landmark["restarted" if landmark_time == "from_landmark" else "entry"]
    groups = {g["group"]["key"]: g for g in body["groups"]}
    for fit in fits:
        group = groups[fit["group"]]
        assert group["n"] == fit["n"]
        points = {p["time"]: p for p in group["curve"]}
        for t, s, n_risk in zip(fit["time"], fit["surv"], fit["n_risk"], strict=True):
            assert points[t]["survival"] == pytest.approx(s, abs=1e-10), (fit["group"], t)
            assert points[t]["n_risk"] == n_risk, (fit["group"], t)
        assert group["median"]["time"] == pytest.approx(fit["median"], abs=1e-10)
    if landmark_time == "from_origin":
        # delayed entry: nobody is at risk before the landmark
        for g in body["groups"]:
            assert all(row["n_risk"] == 0 for row in g["at_risk"] if row["time"] <= landmark["landmark"])
    assert "landmark" in body["method"]["groups"]


def test_the_status_is_the_last_assessment_on_or_before_the_landmark(client: TestClient[Any]) -> None:
    s = f.study(client)
    cases = {
        # (assessments: day, category, mrd) -> response group, MRD group
        "late-cr": ([(15, "NR", "positive"), (31, "CR", "negative")], "remission", "mrd_negative"),
        "after": ([(15, "CR", "negative"), (32, "NR", "positive")], "remission", "mrd_negative"),
        "same-day": ([(29, "NR", "negative"), (29, "CR", "positive")], "remission", "mrd_positive"),
        "lost-cr": ([(15, "CR", "negative"), (29, "PR", "not_done")], "no_remission", "mrd_negative"),
    }
    for code, (assessments, _, _) in cases.items():
        p = f.patient(client, s["id"], subject_code=code)
        for day, category, mrd in assessments:
            f.response(client, p["id"], study_day=day, category=category, mrd_status=mrd)
        f.event(client, p["id"], event_type="last_follow_up", study_day=200)
    rows_of = {}
    for kind, column in (("response", 1), ("mrd", 2)):
        body = _survival(client, str(s["id"]), group_by=f"{kind}_at_landmark", landmark_day=30)
        rows_of[kind] = {g["group"]["key"]: g["n"] for g in body["groups"]}
        expected = Counter(case[column] for case in cases.values())
        assert rows_of[kind] == {k: expected.get(k, 0) for k in rows_of[kind]}, kind


def test_other_analyses_group_by_the_same_values(client: TestClient[Any]) -> None:
    s = f.study(client)
    a1, a2 = (f.site(client, s["id"], code=c, institution=f"Centre {c}") for c in ("A1", "B2"))
    layout = [("female", a1), ("female", a2), ("male", a1), ("male", a1), (None, None)]
    for i, (sex, site) in enumerate(layout):
        fields: dict[str, Any] = {"sex": sex} if sex else {}
        if site:
            fields["site_id"] = site["id"]
        p = f.patient(client, s["id"], subject_code=f"S{i}", **fields)
        f.response(client, p["id"], category="CR" if i % 2 == 0 else "NR")
        f.adverse_event(client, p["id"], term="Neutropenia", grade=3 if sex == "male" else 1)
    url = f"{API}/studies/{s['id']}"
    rates = client.get(f"{url}/response-rates", params={"group_by": "sex"}).json()
    assert [(g["group"]["value"], g["patients"], g["responders"]) for g in rates["groups"]] == [
        ("female", 2, 1),
        ("male", 2, 1),
    ]
    assert rates["excluded_by_reason"] == {"no sex recorded: left out of the comparison by sex": 1}
    assert any("S4" in w for w in rates["warnings"])
    incidence = client.get(f"{url}/adverse-event-incidence", params={"group_by": "site"}).json()
    assert [g["value"] for g in incidence["groups"]] == ["A1", "B2"]
    [row] = incidence["rows"]
    assert [(c["any_grade"]["n"], c["any_grade"]["N"], c["severe"]["n"]) for c in row["groups"]] == [
        (3, 3, 2),
        (1, 1, 0),
    ]
    assert incidence["excluded_by_reason"] == {"no site recorded: left out of the comparison by site": 1}
    assert any("S4" in w for w in incidence["warnings"])
    cif = client.get(f"{url}/cumulative-incidence", params={"group_by": "sex"}).json()
    assert [g["group"]["value"] for g in cif["groups"]] == ["female", "male"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("survival", {"group_by": "age"}, "age_cuts"),
        ("survival", {"group_by": "sex", "age_cuts": "18"}, "age_cuts"),
        ("survival", {"group_by": "age", "age_cuts": "40,18"}, "age_cuts"),
        ("survival", {"group_by": "mrd_at_landmark"}, "landmark_day"),
        ("survival", {"group_by": "response_at_landmark", "landmark_day": 30, "endpoint": "RFS"}, "group_by"),
        ("cumulative-incidence", {"group_by": "mrd_at_landmark"}, "group_by"),
        ("response-rates", {"group_by": "response_at_landmark"}, "group_by"),
        ("survival/plot", {"group_by": "age"}, "age_cuts"),
        ("time-to-event", {"group_by": "mrd_at_landmark"}, "group_by"),
        ("adverse-event-incidence", {"group_by": "response_at_landmark"}, "group_by"),
        ("transplant/cumulative-incidence", {"group_by": "mrd_at_landmark"}, "group_by"),
    ],
)
def test_groupings_that_cannot_be_answered_are_refused(
    client: TestClient[Any], path: str, params: dict[str, Any], field: str
) -> None:
    s = f.study(client)
    f.patient(client, s["id"])
    response = client.get(f"{API}/studies/{s['id']}/{path}", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text


def test_an_attribute_with_too_many_levels_is_refused(client: TestClient[Any]) -> None:
    s = f.study(client)
    for i in range(MAX_LEVELS + 1):
        f.patient(client, s["id"], subject_code=f"R{i}", risk_group=f"risk {i}")
    response = client.get(f"{API}/studies/{s['id']}/survival", params={"group_by": "risk_group"})
    assert response.status_code == 422 and "distinct values" in response.json()["detail"]


def test_grays_test_stratified_by_an_attribute_equals_cuminc(client: TestClient[Any]) -> None:
    fixture = json.loads((Path(__file__).parents[1] / "fixtures/r/gray_strata.json").read_text())
    data = fixture["data"]
    s = f.study(client)
    arms = [f.arm(client, s["id"], label=label) for label in ("A", "B")]
    kinds = {0: "last_follow_up", 1: "relapse", 2: "death"}
    for i, (time, status, arm, sex) in enumerate(
        zip(data["ftime"], data["fstatus"], data["arm"], data["sex"], strict=True)
    ):
        p = f.patient(client, s["id"], subject_code=f"C{i:02d}", arm_id=arms[arm]["id"], sex=sex)
        f.response(client, p["id"], study_day=29, category="CR")
        f.event(client, p["id"], event_type=kinds[status], study_day=29 + time)
    url = f"{API}/studies/{s['id']}/cumulative-incidence"
    for params, expected in (
        ({"group_by": "arm", "strata": "sex"}, fixture["stratified"]),
        ({"group_by": "arm"}, fixture["unstratified"]),
    ):
        tests = client.get(url, params=params).json()["gray_tests"]
        assert [t["cause"] for t in tests] == ["relapse", "non_relapse_mortality"]
        assert [t["statistic"] for t in tests] == pytest.approx(expected["statistic"], abs=1e-8)
        assert [t["p_value"] for t in tests] == pytest.approx(expected["p"], abs=1e-8)
        assert all(t["stratified_by"] == params.get("strata") for t in tests)
